"""Config checks: tables nested too deep, secrets written where a name belongs, Discord ids
checked alike everywhere, and aliases that are no word."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.destinations import webhook_problem
from tests.config.test_config import issues
from tests.conftest import REPO
from watchers.config import load_config, parse_config
from watchers.errors import ConfigError

HOOK = "https://discord.com/api/webhooks/123456789012345678/SECRETTOKENabcdefghijklmnop"
BOT_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GabcDE.SECRETabcdefghijklmnopqrstuvwxyz0123"
RULE = '[[rules]]\nname = "k"\nquery = "kyiv"\n'


def check(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    """``newswatch check`` on ``text`` as a user runs it, without a bot token."""
    (tmp_path / "c.toml").write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    return subprocess.run([sys.executable, "-m", "bot", "check", "-c", "c.toml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, env=env)


# ------------------------------------------------------------------ nested too deep


@pytest.mark.parametrize("text", [
    "[" + "a." * 500 + "b]\n",             # a 1 KB file
    "a." * 2000 + "b = 1\n",               # a dotted key
    "x = {" + "a." * 150 + "b = 1}\n",     # one in an inline table
    '["a".' + "'a'." * 150 + "b]\n",       # quoted parts
])
def test_keys_nested_too_deep_are_one_line_not_a_traceback(tmp_path: Path, text: str) -> None:
    """A table header or dotted key of hundreds of parts ended check, run and search with a
    RecursionError traceback (a 40 KB key of 20,000 parts after 9 s and 1.6 GB, tomllib taking
    time and memory that grow with the square of its parts). Now it is refused before it is
    parsed, in one line."""
    assert issues(text + RULE, tmp_path) == [
        "not a usable config: arrays or tables nested too deep (a dotted key or table header "
        "of more than 100 parts at line 1)"]
    done = check(tmp_path, text + RULE)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.splitlines()[1:] == [
        "  not a usable config: arrays or tables nested too deep (a dotted key or table "
        "header of more than 100 parts at line 1)"]


def test_a_key_of_a_hundred_parts_and_dotted_values_are_still_read(tmp_path: Path) -> None:
    """The refusal is of keys past a hundred parts: one of a hundred is read (and named as
    the unknown key it is), and a value of many dots is no key."""
    text = "[" + ".".join(["a"] * 100) + "]\nx = 1\n" + RULE
    assert issues(text, tmp_path) == [
        "a: unknown key (expected one of: aliases, channels, discord, fetch, rules, sources, "
        "storage, stories, surge, threshold)"]
    dots = ".".join(["w"] * 300)
    cfg = load_config(_written(tmp_path, f'[[rules]]\nname = "k"\nquery = "\\"{dots}\\""\n'))
    assert cfg.rules[0].query == f'"{dots}"'


def _written(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "ok.toml"
    p.write_text(text)
    return p


def test_data_nested_too_deep_for_the_checks_is_refused_not_a_traceback() -> None:
    """Data nested deeper than Python recurses (as a library hands parse_config, or a file of
    nested arrays and tables within the key limit) ended in a RecursionError from the checks
    of a refused value, which copy it."""
    deep: Any = 1
    for _ in range(5000):
        deep = {"a": deep}
    for data in ({"rules": [{"name": "k", "query": "kyiv"}], "x": deep},
                 {"discord": {"a": deep}}):
        with pytest.raises(ConfigError) as info:
            parse_config(data)
        assert [str(i) for i in info.value.issues] == [
            "not a usable config: arrays or tables nested too deep"]


# ------------------------------------------------------------------ secrets not repeated


@pytest.mark.parametrize(("text", "where"), [
    (RULE + f'channel = "{HOOK}"\n', "rules[0].channel"),
    (RULE + f'channel = "{HOOK}"\n[channels]\nalerts = 1\n', "rules[0].channel"),
    (RULE + f'[discord]\nnotices = "{HOOK}"\n', "discord.notices"),
    (RULE + f'[[sources]]\nname = "s"\ntype = "folder"\npath = "."\nroute = "{HOOK}"\n',
     "sources[0].route"),
])
def test_a_webhook_url_written_as_a_route_name_is_refused_without_its_token(
        tmp_path: Path, text: str, where: str) -> None:
    """A webhook's URL written as a rule's channel (or as the notices' route) was a route's
    name: check said ok and listed the URL whole, token and all, and with a [channels] table
    it said "unknown channel 'https://…/TOKEN'". Now it is refused, saying where the webhook
    goes, and never shown."""
    found = issues(text, tmp_path)
    assert found == [f"{where}: is a webhook's URL (not shown), not a route's name: put the "
                     "webhook under [channels] as a route (alerts = \"https://discord.com/api/"
                     "webhooks/…\", or \"env:VAR\") and name that route here"]
    done = check(tmp_path, text)
    assert done.returncode == 2
    assert "SECRET" not in done.stdout + done.stderr and "123456789012345678" not in (
        done.stdout + done.stderr)


@pytest.mark.parametrize(("text", "says"), [
    (f'[discord]\nadmin_role = "{BOT_TOKEN} "\n',
     "discord.admin_role: holds what looks like a token or a URL (not shown): admin_role is a "
     "role's id or its name"),
    (f'[discord]\nadmin_role = "{BOT_TOKEN}"\n',
     "discord.admin_role: holds what looks like a token or a URL (not shown): admin_role is a "
     "role's id or its name"),
    (RULE + f'mention_role = "{BOT_TOKEN}"\n',
     "rules[0].mention_role: expected a whole number, got a string that looks like a URL or a "
     "token (not shown)"),
    (f'[discord]\nguild_ids = ["{BOT_TOKEN}"]\n',
     "discord.guild_ids[0]: expected a whole number, got a string that looks like a URL or a "
     "token (not shown)"),
    (RULE + f'[discord]\nnotices = "{BOT_TOKEN}"\n',
     "discord.notices: looks like a URL or a token (not shown), not a route's name: a route is "
     "named under [channels], with its channel id, webhook or \"env:VAR\" as its value, and "
     "named here by that name"),
    (RULE + f'[channels]\n"{HOOK}" = 1\n',
     "channels.(a key that looks like a URL or a token, not shown): a route's name may not be a "
     "URL or a token: name the route with a word and give the channel id, webhook URL or "
     "\"env:VAR\" as its value (alerts = \"https://…\")"),
])
def test_a_token_or_url_in_the_wrong_key_is_named_not_shown(tmp_path: Path, text: str,
                                                            says: str) -> None:
    """A bot token pasted into admin_role was printed whole; into mention_role or guild_ids
    its first 39 characters (most of it)."""
    assert says in issues(text, tmp_path)
    done = check(tmp_path, text)
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert "SECRET" not in done.stdout + done.stderr


def test_a_string_in_the_wrong_key_that_is_no_secret_is_still_shown(tmp_path: Path) -> None:
    assert issues(RULE + 'mention_role = "ops"\n', tmp_path) == [
        'rules[0].mention_role: expected a whole number, got the string "ops"']


# ------------------------------------------------------------------ Discord ids


PAST_64_BITS = 2**64


@pytest.mark.parametrize(("text", "where"), [
    (RULE + f"mention_role = {PAST_64_BITS}\n", "rules[0].mention_role"),
    (RULE + f"mention_roles = [5, {PAST_64_BITS}]\n", "rules[0].mention_roles"),
    (RULE + f"mention_users = [{PAST_64_BITS}]\n", "rules[0].mention_users"),
    (RULE + f"[discord]\nescalation_role = {PAST_64_BITS}\n", "discord.escalation_role"),
    (RULE + "[discord]\nescalation_role = 0\n", "discord.escalation_role"),
    (RULE + "mention_users = [0]\n", "rules[0].mention_users"),
])
def test_every_discord_id_is_a_positive_number_of_at_most_64_bits(
        tmp_path: Path, text: str, where: str) -> None:
    """mention_role past 64 bits was refused, but the same value in mention_roles,
    mention_users or escalation_role passed check (Discord refuses such an id)."""
    value = PAST_64_BITS if str(PAST_64_BITS) in text else 0
    assert issues(text, tmp_path) == [
        f"{where}: {value} is not a Discord id (ids are positive numbers of at most 64 bits)"]
    largest = text.replace(str(PAST_64_BITS), str(PAST_64_BITS - 1)).replace("= 0", "= 1")
    largest = largest.replace("[0]", "[1]")
    assert load_config(_written(tmp_path, largest)).rules[0].name == "k"


@pytest.mark.parametrize("url", [
    "https://discord.com/api/webhooks/0/tok",
    f"https://discord.com/api/webhooks/{PAST_64_BITS}/tok",
    f"https://discord.com/api/webhooks/{10 * PAST_64_BITS}/tok",
    "https://discord.com/api/webhooks/\u0661\u0662\u0663/tok",   # Arabic-Indic 123
    "https://discord.com/api/webhooks/\uff11\uff12\uff13/tok",   # full-width 123
    "https://discord.com/api/v\u0661\u0660/webhooks/123/tok",
])
def test_a_webhook_url_whose_id_is_no_discord_id_is_refused(tmp_path: Path, url: str) -> None:
    """A webhook URL (in an env: variable, or the file) with id 0, an id past 64 bits, or
    Arabic-Indic digits (read as webhook 123) passed check and run."""
    assert webhook_problem(url) == "is not a Discord webhook URL"
    found = issues(RULE + f'[channels]\nalerts = "{url}"\n', tmp_path)
    assert found == ["channels.alerts: expected a channel id, a webhook URL "
                     "(https://discord.com/api/webhooks/ID/TOKEN), or 'env:VAR' naming a "
                     "variable that holds one"]


@pytest.mark.parametrize("webhook_id", [1, 123456789012345678, PAST_64_BITS - 1])
def test_a_webhook_url_with_a_discord_id_is_taken(tmp_path: Path, webhook_id: int) -> None:
    url = f"https://discord.com/api/webhooks/{webhook_id}/tok-en_1"
    assert webhook_problem(url) is None
    cfg = load_config(_written(tmp_path, RULE + f'[channels]\nalerts = "{url}"\n'))
    assert cfg.targets == {"alerts": url}


# ------------------------------------------------------------------ aliases


@pytest.mark.parametrize(("table", "where", "word"), [
    ('kyiv = ["kiew*"]', "aliases.kyiv[0]", "'kiew*'"),
    ('"kyiv~" = ["kiew"]', "aliases.kyiv~", "'kyiv~'"),
    ('kyiv = ["kiew", "!!!"]', "aliases.kyiv[1]", "'!!!'"),
    ('kyiv = ["*"]', "aliases.kyiv[0]", "'*'"),
    ('kyiv = ["\\"kiew\\""]', "aliases.kyiv[0]", "'\"kiew\"'"),
])
def test_an_alias_that_is_no_word_is_refused(tmp_path: Path, table: str, where: str,
                                             word: str) -> None:
    """An alias the text is never read as one word of ("kiew*", "kyiv~", "!!!") passed check
    and matched nothing."""
    assert issues(RULE + f"[aliases]\n{table}\n", tmp_path) == [
        f"{where}: {word} is not a word as texts are read (letters and digits, joined by an "
        "apostrophe or a hyphen), so it never matches: aliases are plain words, not query "
        "syntax (no *, ~ or quotes)"]


def test_aliases_of_words_are_taken_and_match(tmp_path: Path) -> None:
    folder = tmp_path / "am"
    folder.mkdir()
    (folder / "a.txt").write_text("Fighting near Kiew today\n")
    aliases = '[aliases]\nkyiv = ["kiew", "Kiev\'s", "_kiev_", "cyber-attack", "U.S."]\n'
    cfg = load_config(_written(tmp_path, RULE + aliases))
    assert list(cfg.aliases) == ["kyiv"]
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    done = subprocess.run([sys.executable, "-m", "bot", "match", "kyiv", "am", "-c", "ok.toml"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
    assert "1 matching document(s)" in done.stderr + done.stdout, done.stderr


def test_an_empty_alias_key_is_named_plainly(tmp_path: Path) -> None:
    """Its place read "aliases..[key]"."""
    assert issues(RULE + '[aliases]\n"" = ["kiew"]\n"a b" = ["x"]\n', tmp_path) == [
        "aliases.\"\": an alias must be a single word, not ''",
        "aliases.a b: an alias must be a single word, not 'a b'"]


def test_the_documented_example_still_checks() -> None:
    load_config(REPO / "config.example.toml")
