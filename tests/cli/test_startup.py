"""What `newswatch` loads before a command runs: `import bot.cli`, `--help` and a command's own
`--help` load no asyncio, no pydantic config models, no engine, store or network code; each
command imports what it needs when it runs. A search loads the store and the rules, and still
nothing of the network, Discord, charts or PostgreSQL. This keeps the start-up short; how
short is measured, never asserted."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_cli import nw
from tests.conftest import REPO, ends

# Never needed to parse a command line or print its help.
NOT_AT_START = (
    "asyncio", "pydantic", "pydantic_core", "tomllib", "sqlite3", "aiosqlite", "asyncpg",
    "aiohttp", "discord", "feedparser", "matplotlib", "numpy", "regex", "rapidfuzz",
    "hyperscan", "wordfreq", "watchers.config", "watchers.models", "watchers.sources",
    "watchers.rules", "watchers.store", "watchers.search", "watchers.engine",
    "watchers.stories",
)
# Never needed by a search of an SQLite store.
NOT_IN_A_SEARCH = (
    "aiohttp", "discord", "feedparser", "matplotlib", "asyncpg", "watchers.engine",
    "watchers.stories", "watchers.store.postgres", "watchers.opml", "bot.client", "bot.charts",
)


def printed_and_loaded(code: str, cwd: Path = REPO) -> tuple[str, set[str]]:
    """What a fresh interpreter running ``code`` printed, and the modules it then holds."""
    script = f"import sys\n{code}\nimport json\nprint(json.dumps(sorted(sys.modules)))\n"
    result = subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    *printed, modules = result.stdout.splitlines()
    return "\n".join(printed), set(json.loads(modules))


def loaded_after(code: str, cwd: Path = REPO) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    return printed_and_loaded(code, cwd)[1]


def test_importing_the_cli_loads_no_command_code() -> None:
    assert loaded_after("import bot.cli") & set(NOT_AT_START) == set()


@pytest.mark.parametrize("argv", [["--help"], ["stories", "--help"], ["search", "--help"],
                                  ["run", "--help"], ["trend", "--help"],
                                  ["sources", "import", "--help"], ["copy", "--help"],
                                  ["--version"],
                                  ["no-such-command"]])
def test_help_and_usage_errors_load_no_command_code(argv: list[str]) -> None:
    code = ("from bot.cli import main\n"
            "try:\n"
            f"    main({argv!r})\n"
            "except SystemExit:\n"
            "    pass\n")
    assert loaded_after(code) & set(NOT_AT_START) == set()


def _one_rule_and_history(folder: Path) -> None:
    """``config.toml`` with one rule (``troops``) and ``h.jsonl``, one article's history."""
    (folder / "config.toml").write_text('[storage]\npath = "nw.db"\n'
                                        '[[rules]]\nname = "troops"\nquery = "troops"\n')
    (folder / "h.jsonl").write_text(json.dumps({
        "id": "a1", "title": "Troops gather near the border", "text": "More troops arrived.",
        "url": "https://example.org/a1", "date": "2022-01-30T12:00:00+00:00",
        "source": "example"}) + "\n")


def test_a_search_loads_no_network_discord_or_chart_code(tmp_path: Path) -> None:
    _one_rule_and_history(tmp_path)
    imported = nw("import", "h.jsonl", cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    code = ("from bot.cli import main\n"
            "assert main(['search', 'troops', '-c', 'config.toml']) == 0\n")
    loaded = loaded_after(code, cwd=tmp_path)
    assert {"watchers.search", "watchers.store.sqlite"} <= loaded  # it did search
    assert loaded & set(NOT_IN_A_SEARCH) == set()


def test_a_check_loads_no_discord_network_or_delivery_code(tmp_path: Path) -> None:
    """`check` (without --live) reads the config, the environment and the store file: it
    loaded discord.py, aiohttp and the delivery code for two small functions (the token's and
    a webhook URL's checks), about 0.4 s of a command people run after every edit."""
    (tmp_path / "config.toml").write_text(
        '[storage]\npath = "nw.db"\n[channels]\nalerts = "env:NW_TEST_HOOK"\n'
        '[[rules]]\nname = "troops"\nquery = "troops"\n')
    code = ("import os\n"
            "os.environ['NW_TEST_HOOK'] = 'https://discord.com/api/webhooks/1/abc'\n"
            "from bot.cli import main\n"
            "assert main(['check', '-c', 'config.toml']) == 0\n")
    loaded = loaded_after(code, cwd=tmp_path)
    assert {"watchers.config", "watchers.rules"} <= loaded  # it did check
    assert loaded & {"discord", "aiohttp", "bot.sinks", "bot.runner", "watchers.delivery",
                     "watchers.engine"} == set()
    # No store file yet (a first check), so none to read: not the PostgreSQL driver either,
    # which the reading of a store file by what run would refuse loads (about 60 ms).
    # (A store file there is read: tests/cli/test_cli.py, test_check_reads_the_store_...)
    assert loaded & {"asyncpg", "watchers.store.copy", "watchers.store.postgres"} == set()


@pytest.mark.parametrize("feeds", [False, True])
def test_an_import_opens_the_engine_without_loading_an_http_client(
    tmp_path: Path, feeds: bool
) -> None:
    """The engine's shared fetcher is made when a source first fetches: an import (which
    fetches nothing) loaded aiohttp for it, about 0.15 s of its start. With feeds in the
    config too: building a feed source checks its URL against the fetcher's allowlist, which
    made the fetcher."""
    _one_rule_and_history(tmp_path)
    if feeds:
        with (tmp_path / "config.toml").open("a") as f:
            f.write('[fetch]\nallow_private = ["10.0.0.0/8"]\n'
                    '[[sources]]\nname = "wire"\ntype = "feed"\n'
                    'url = "https://feeds.example.org/world.xml"\n'
                    '[[sources]]\nname = "lan"\ntype = "feed"\n'
                    'url = "http://10.1.2.3/feed.xml"\n')
    code = ("from bot.cli import main\n"
            "assert main(['import', 'h.jsonl', '-c', 'config.toml']) == 0\n")
    loaded = loaded_after(code, cwd=tmp_path)
    assert "watchers.engine" in loaded  # it did open the engine
    assert loaded & {"aiohttp", "discord", "watchers.sources._http", "watchers.sources._lean",
                     "httptools"} == set()


def test_an_import_whose_config_names_a_private_feed_says_so_and_stores_nothing(
    tmp_path: Path,
) -> None:
    """The allowlist is read from the config now, not from a fetcher made for the check: a
    private feed address that is not allowed is still refused by name before the store is
    made, and loads no HTTP client."""
    _one_rule_and_history(tmp_path)
    with (tmp_path / "config.toml").open("a") as f:
        f.write('[[sources]]\nname = "lan"\ntype = "feed"\nurl = "http://10.1.2.3/feed.xml"\n')
    result = nw("import", "h.jsonl", cwd=tmp_path)
    assert result.returncode == 2
    assert "sources[0].url" in result.stderr and "10.1.2.3 is a private address" in result.stderr
    assert not (tmp_path / "nw.db").exists()
    code = ("from bot.cli import main\n"
            "assert main(['import', 'h.jsonl', '-c', 'config.toml']) == 2\n")
    assert loaded_after(code, cwd=tmp_path) & {"aiohttp", "watchers.sources._http"} == set()


def test_a_run_to_the_console_loads_no_http_client_or_discord(tmp_path: Path) -> None:
    """Without a token or a webhook, ``run`` prints its alerts: it made an HTTP session (and
    loaded aiohttp and discord.py for the webhook sinks it then did not make), about 0.25 s of
    its start. With a webhook route it still makes them and posts (tests/bot)."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("Troops gather near the border\n\nMore troops.\n")
    (tmp_path / "config.toml").write_text(
        '[storage]\npath = "nw.db"\n'
        '[[sources]]\nname = "in"\ntype = "folder"\npath = "in"\n'
        '[[rules]]\nname = "troops"\nquery = "troops"\n')
    code = ("import os\n"
            "os.environ.pop('DISCORD_TOKEN', None)\n"
            "from bot.cli import main\n"
            "assert main(['run', '-c', 'config.toml', '--once']) == 0\n")
    printed, loaded = printed_and_loaded(code, cwd=tmp_path)
    assert "matched: troops" in printed  # the alert was printed
    assert "watchers.engine" in loaded  # it did run the engine
    assert loaded & {"aiohttp", "discord", "bot.client", "bot.sinks",
                     "watchers.sources._http"} == set()


def test_an_import_with_a_wrong_config_says_so_before_loading_the_engine(tmp_path: Path) -> None:
    """The config is read first: its error is said without loading the engine, the store or
    the network code (about 0.2 s of a process that only says what is wrong)."""
    (tmp_path / "config.toml").write_text('[storage]\npath = "nw.db"\nwhere = 1\n')
    (tmp_path / "h.jsonl").write_text("")
    code = ("from bot.cli import main\n"
            "assert main(['import', 'h.jsonl', '-c', 'config.toml']) == 2\n")
    loaded = loaded_after(code, cwd=tmp_path)
    assert "watchers.config" in loaded  # it did read the config
    assert loaded & {"watchers.engine", "watchers.store", "aiohttp", "discord"} == set()
    assert not (tmp_path / "nw.db").exists()


def test_a_plain_search_reads_no_table_it_does_not_need(tmp_path: Path) -> None:
    """A search of plain words reads neither the other languages' names that only fuzzy terms
    take (30,000 of them) nor the whole word-frequency table (50,000 words); a fuzzy term
    searches the names' text for its words rather than reading them all, and still finds
    through them."""
    (tmp_path / "config.toml").write_text('[storage]\npath = "nw.db"\n')
    lines = [{"id": "a1", "title": "Troops gather near the border", "text": "More troops.",
              "url": "https://example.org/a1", "date": "2022-01-30T12:00:00+00:00",
              "source": "example"},
             {"id": "a2", "title": "Panzer vor München", "text": "Truppen in München.",
              "url": "https://example.org/a2", "date": "2022-01-30T13:00:00+00:00",
              "source": "example"}]
    (tmp_path / "h.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert nw("import", "h.jsonl", cwd=tmp_path).returncode == 0
    script = ("import json, sys\n"
              "from bot.cli import main\n"
              "from watchers.rules import variants\n"
              "assert main(['search', sys.argv[1], '-c', 'config.toml', '--json']) == 0\n"
              "print(json.dumps([variants._shipped_variants.cache_info().currsize,\n"
              "                  variants._zipf_table is not None,\n"
              "                  variants._shipped_lines.cache_info().currsize]))\n")
    read = {}
    for query in ("troops", "border AND troops", "munich~"):
        result = subprocess.run([sys.executable, "-c", script, query], cwd=tmp_path,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        *found, tables = result.stdout.splitlines()
        read[query] = ([json.loads(line)["id"] for line in found], json.loads(tables))
    assert read["troops"] == (["a1"], [0, False, 0])
    assert read["border AND troops"] == (["a1"], [0, False, 0])
    assert read["munich~"][0] == ["a2"]
    assert read["munich~"][1][0] == 0 and read["munich~"][1][2] == 1  # searched, not read


@pytest.mark.parametrize("argv", [
    ["run", "--once", "--role", "poll", "--lease", "90s"], ["check", "--live", "-c", "x.toml"],
    ["match", "troops", "a", "b", "--json"], ["search", "troops", "--limit", "5", "--best"],
    ["import", "h.jsonl"], ["stories", "f.jsonl", "--window", "5d"],
    ["sources", "export", "-o", "out.opml"], ["trend", "troops", "--since", "3d"],
    ["migrate"], ["copy", "--from", "a.db", "--to", "b.db"],
])
def test_the_one_command_parser_reads_as_the_whole_one(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """main builds only the named command's parser; it gives the same arguments and help."""
    from bot.cli import build_parser

    assert build_parser(argv[0]).parse_args(argv) == build_parser().parse_args(argv)
    words = argv[:2] if argv[0] == "sources" else argv[:1]
    helps = []
    for parser in (build_parser(argv[0]), build_parser()):
        with pytest.raises(SystemExit):
            parser.parse_args([*words, "--help"])
        helps.append(capsys.readouterr().out)
    assert helps[0] == helps[1] and helps[0].startswith(f"usage: newswatch {' '.join(words)}")


def test_the_command_and_python_m_bot_start_through_the_entry_point() -> None:
    """Both start through ``bot.entry.run``, which ends a Ctrl-C while the program loads
    quietly (see the next test)."""
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"newswatch": "bot.entry:run"}
    assert "from bot.entry import run" in (REPO / "bot" / "__main__.py").read_text()


@pytest.mark.parametrize("module", ["bot.cli", "watchers.errors", "watchers.config"])
def test_ctrl_c_while_a_command_loads_ends_quietly_with_130(module: str, tmp_path: Path) -> None:
    """Ctrl-C in the first tens of milliseconds, while the program loads its modules (then a
    command its errors and the config's models, whose validators pydantic-core builds),
    showed a traceback of whichever was loading (pydantic-core wraps it in a SchemaError
    that names it); it ends as Ctrl-C anywhere else does."""
    raise_it = ("raise KeyboardInterrupt" if module != "watchers.config" else
                "import pydantic_core\n"
                "        raise pydantic_core.SchemaError("
                "'Error building \"literal\" validator:\\n  KeyboardInterrupt: ')")
    result = entry_run_after("import builtins\n"
                             "real = builtins.__import__\n"
                             "def interrupted(name, *args, **kwargs):\n"
                             f"    if name == {module!r}:\n"
                             f"        {raise_it}\n"
                             "    return real(name, *args, **kwargs)\n"
                             "builtins.__import__ = interrupted\n", tmp_path)
    assert result.returncode == 130 and result.stderr == "", result.stderr


def entry_run_after(prelude: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """`newswatch stories h.jsonl` (an empty file, made in ``folder``) through the entry
    point, in a fresh interpreter that first runs ``prelude`` (the patch a test needs)."""
    script = f"{prelude}import sys\nfrom bot.entry import run\nsys.exit(run())\n"
    (folder / "h.jsonl").write_text("")
    return subprocess.run([sys.executable, "-c", script, "stories", "h.jsonl"], cwd=folder,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def test_a_schema_error_that_is_not_a_ctrl_c_is_not_hidden(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import pydantic_core

    from bot import cli, stories_cli

    def broken(args: object) -> int:
        raise pydantic_core.SchemaError("Error building \"model\" validator: bad")

    monkeypatch.setattr(stories_cli, "run", broken)
    with pytest.raises(pydantic_core.SchemaError):
        cli.main(["stories", "nothing.jsonl"])


@pytest.mark.parametrize("when", ["while-switching", "after-switching"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stop_as_the_program_hands_its_signals_over_ends_quietly_with_130(
        when: str, signum: int, tmp_path: Path) -> None:
    """Once the program has loaded, it hands SIGINT, SIGTERM and SIGHUP from its loading
    handler over to Python's own, one after the other. A signal in that moment (CI met one,
    50 ms after the start) ran the loading handler outside the part that ends a stop
    quietly: a traceback, and the process killed by SIGINT. Here the signal is sent as the
    program sets its second handler, or just after its last."""
    result = entry_run_after("import os, signal\n"
                             "real = signal.signal\n"
                             "calls = []\n"
                             "def handing_over(sig, handler):\n"
                             "    calls.append(sig)\n"
                             f"    if {when!r} == 'while-switching' and len(calls) == 5:\n"
                             f"        os.kill(os.getpid(), {int(signum)})\n"
                             "    got = real(sig, handler)\n"
                             f"    if {when!r} == 'after-switching' and len(calls) == 6:\n"
                             f"        os.kill(os.getpid(), {int(signum)})\n"
                             "    return got\n"
                             "signal.signal = handing_over\n", tmp_path)
    assert result.returncode == 130 and "Traceback" not in result.stderr, (
        result.returncode, result.stderr)


def test_an_empty_store_file_is_ok_to_check_and_run_makes_the_store_in_it(
        tmp_path: Path) -> None:
    """A careless `touch nw.db` before the first run: check says ok at once (it has nothing
    to read, so it loads no PostgreSQL driver to read it), and run then makes the store in
    that file; check reads the store from then on."""
    shutil.copytree(REPO / "seeds", tmp_path / "seeds")
    (tmp_path / "config.toml").write_text(
        '[storage]\npath = "nw.db"\n[[sources]]\nname = "seeds"\ntype = "folder"\n'
        'path = "seeds"\n[[rules]]\nname = "troops"\nquery = "troops"\n')
    (tmp_path / "nw.db").write_bytes(b"")
    printed, loaded = printed_and_loaded(
        "from bot.cli import main\nprint(main(['check', '-c', 'config.toml']))\n", cwd=tmp_path)
    assert printed.splitlines()[0] == "config.toml: ok" and printed.splitlines()[-1] == "0"
    assert loaded & {"asyncpg", "watchers.store.copy", "watchers.store.postgres"} == set()
    ran = nw("run", "--once", "-c", "config.toml", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / "nw.db").stat().st_size > 0
    again = nw("check", "-c", "config.toml", cwd=tmp_path)
    assert again.returncode == 0 and "config.toml: ok" in again.stdout, again.stderr
    searched = nw("search", "troops", "-c", "config.toml", cwd=tmp_path)
    assert searched.returncode == 0 and searched.stdout.strip(), searched.stderr


_SWALLOWED = '''
import importlib.abc, importlib.util, sys, time

class Slow(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """bot.cli's import, taking its time and swallowing a KeyboardInterrupt on the way (as a
    library's callback whose errors are only printed does), then going on for good."""
    def find_spec(self, name, path, target=None):
        return importlib.util.spec_from_loader(name, self) if name == "bot.cli" else None
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        print("loading", flush=True)
        try:
            time.sleep(30)
        except KeyboardInterrupt:
            pass
        while True:
            time.sleep(0.1)

sys.meta_path.insert(0, Slow())
from bot.entry import run
sys.exit(run())
'''


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_while_loading_ends_the_program_even_if_its_interrupt_is_swallowed(
        signum: int) -> None:
    """A run killed 50 ms into its loading on a loaded CI machine never ended: the stop's
    KeyboardInterrupt can land where it is swallowed, or where the exit then waits. A stop
    while the program loads ends it with 130 within a few seconds, whatever happens to it."""
    with ends(subprocess.Popen([sys.executable, "-c", _SWALLOWED], cwd=REPO, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)) as proc:
        assert proc.stdout is not None and proc.stdout.readline() == "loading\n"
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err


def test_a_stop_while_weakref_loads_ends_quietly_with_130(tmp_path: Path) -> None:
    """A SIGTERM that came while the program's imports were loading ``weakref`` (for
    logging): the stop's handler imported threading for its timer, threading imports the
    half-loaded ``_weakrefset``, and the ImportError ended the run with a traceback and status
    1 (CI met it, 50 ms into a start). The handler imports nothing now. Here the signal comes
    as ``bot.cli`` starts loading, with ``_weakrefset`` half loaded."""
    result = entry_run_after(
        "import os, signal, sys, types\n"
        "class Half:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'bot.cli':\n"
        "            sys.meta_path.remove(self)\n"
        "            real = sys.modules.pop('_weakrefset', None)\n"
        "            sys.modules['_weakrefset'] = types.ModuleType('_weakrefset')\n"
        "            try:\n"
        "                os.kill(os.getpid(), signal.SIGTERM)\n"
        "                for _ in range(1000):\n"
        "                    pass\n"
        "            finally:\n"
        "                del sys.modules['_weakrefset']\n"
        "                if real is not None:\n"
        "                    sys.modules['_weakrefset'] = real\n"
        "        return None\n"
        "sys.meta_path.insert(0, Half())\n", tmp_path)
    assert result.returncode == 130 and "Traceback" not in result.stderr, (
        result.returncode, result.stderr)
