"""The ``newswatch`` command: run, check, match, search, import, stories."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import sources_cli, store_cli, stories_cli, trend_cli
from bot.cli_config import config_arg, config_path, load, not_a_file
from bot.logs import encoding_of, json_line, say, shown, stopped_like_ctrl_c

# What a command needs (asyncio, the config models, the engine, the store) is imported by that
# command when it runs, not here: `newswatch --help` and a mistyped option answer at once, and
# each command pays only for its own modules (tests/cli/test_startup.py keeps it so).
if TYPE_CHECKING:
    from datetime import datetime

    from watchers.config import Config, SourceConfig
    from watchers.models import Article
    from watchers.store import Store
    from watchers.store.base import StoryRecord

__all__ = ["main"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
log = logging.getLogger("newswatch")


async def _read_only(target: str | Path, *, lookups: bool = False) -> Store:
    """The database at ``target`` (a file or a PostgreSQL URL) for reading: no process lock, so
    it never waits for, or gets in the way of, a running newswatch. ``lookups``: refuse lookup
    indexes built with other word keys than the engine's (a writer's open rebuilds them)."""
    from watchers.rules.text import KEYS_VERSION
    from watchers.store import open_store

    return await open_store(target, readonly=True,
                            keys_version=KEYS_VERSION if lookups else None)


def _where(cfg: Config) -> str:
    """Where the config keeps its data, for people: the file, or the PostgreSQL database
    without its credentials (an ``env:`` URL is named by its variable, never read here)."""
    url = cfg.storage.url
    if url is None:
        return str(cfg.resolve(cfg.storage.path))
    if url.startswith("env:"):
        return f"PostgreSQL from ${url.removeprefix('env:')}"
    from watchers.store.postgres import describe

    return f"PostgreSQL {describe(url)}"


def _new_store(cfg: Config) -> str:
    """What ``check`` adds to an SQLite path that names no file yet: run makes it, and any
    folder on the way (a typo in the path made folders in silence)."""
    if cfg.storage.url is not None:
        return ""
    path = Path(cfg.resolve(cfg.storage.path))
    if path.exists():
        return ""
    missing = [p for p in path.parents if not p.exists()]
    if not (missing[-1].parent if missing else path.parent).is_dir() or any(
            p.is_symlink() for p in missing):
        return ""  # through a file or a link that leads nowhere: run refuses it, check says why
    if not missing:
        return " (new: run creates it)"
    return f" (new: run creates it and the folder {missing[-1]})" if len(missing) == 1 else (
        f" (new: run creates it and the folders from {missing[-1]} down)")


def _setup_logging(verbose: bool) -> None:
    from bot.logs import setup_logging

    setup_logging(logging.DEBUG if verbose else logging.INFO)


# --------------------------------------------------------------------------- check


def cmd_check(args: argparse.Namespace) -> int:
    from bot.destinations import token_from_env, webhook_problem
    from watchers.config import format_duration, load_config, routes_sent_to

    path = config_path(args.config)
    cfg = load_config(path)
    # An env:VAR store URL is read as run reads it: unset or not a PostgreSQL URL is run's
    # exit 2, so it is check's too.
    from watchers.errors import ConfigError, NewswatchError

    try:
        target = cfg.storage.target(cfg.resolve)
    except ConfigError as exc:
        raise ConfigError(exc.issues, file=str(path)) from None
    # What `run` would meet in this environment: a webhook variable unset or not a webhook (it
    # cannot post there), a rule with no destination while a bot token is set, a token that
    # is no token, a store path that is no file (run refuses to start or fails). Found first:
    # "ok" is said only when there is none (it was said, and the refusal followed).
    try:
        token = token_from_env(cfg) is not None  # as run reads it
        unusable = None
    except NewswatchError as exc:  # a token run refuses (a line break inside it)
        token, unusable = True, str(exc)
    refused: list[str] = []  # what run refuses to start with (see bot.runner)
    unrouted: list[str] = []
    # The routes sent to are those run reads (bot.client._unrouted): an enabled rule's, the
    # notices' ([discord] notices, a source's route). A disabled rule's route was refused here
    # and not by run; a notice route was not, and its notices waited for ever.
    sent = routes_sent_to(cfg)
    needed = {route for _, route in sent}
    used = {r.channel for r in cfg.rules if r.enabled}
    noticed = {route for where, route in sent if not where.startswith("rules[")}
    named = ({r.channel for r in cfg.rules} | {s.route for s in cfg.sources if s.route}
             | needed)
    routes = sorted(named | set(cfg.targets))
    dests: dict[str, str] = {}
    for route in routes:
        ref = cfg.targets.get(route)
        if ref is None:
            # With a token, run refuses such a route's rules and notices (said below);
            # without, it prints them.
            dests[route] = ("console (no [channels] entry)" if not token
                            else "no [channels] entry (refused with a token)" if route in needed
                            else "no [channels] entry")
            if token and route in needed:
                unrouted.append(route)
        elif isinstance(ref, int):
            dests[route] = f"channel {ref}"
        elif ref.startswith("env:"):
            dests[route] = f"webhook from ${ref[4:]}"
            problem = webhook_problem(os.environ.get(ref[4:], ""))
            if problem:
                refused.append(f"route {route}: ${ref[4:]} {problem} here")
        else:
            dests[route] = "webhook (URL in file; prefer env:VAR)"
    if unusable is not None:
        refused.append(unusable)
    if (where := _not_a_store_file(target, path)) is not None:
        refused.append(where)
    _summary(f"{path}: " + ("ok" if not (refused or unrouted)
                            else "valid, but run refuses to start with it here (see below)"))
    _summary(f"  storage  {_where(cfg)}{_new_store(cfg)}")
    _summary(f"  sources  {len(cfg.sources)}")
    from watchers.urls import without_credentials

    for s in cfg.sources:
        # A feed's URL without its credentials (a ?token=): the summary is pasted in reports.
        where = without_credentials(str(getattr(s, "url", None) or getattr(s, "path", "")))
        flag = "" if s.enabled else " (disabled)"
        every = format_duration(s.every)
        _summary(f"    {s.name:<16} {s.type:<6} every {every:<6} {where}{flag}")
    if any(r.min_sources > 1 for r in cfg.rules):
        _outlets_summary(cfg.sources)
    _summary(f"  rules    {len(cfg.rules)}")
    for r in cfg.rules:
        waits = f" (waits for {r.min_sources} outlets)" if r.min_sources > 1 else ""
        flag = "" if r.enabled else " (disabled)"
        _summary(f"    {r.name:<16} → {r.channel:<10} {r.severity:<8} {r.query}{waits}{flag}")
    _summary(f"  routes   {len(routes)}")
    disabled = {r.channel for r in cfg.rules if not r.enabled}
    for route in routes:
        uses = ("; notices go here" if route in noticed else "") + (
            "" if route in used else "; only disabled rules use it" if route in disabled
            else "; no rule uses it")
        _summary(f"    {route:<16} {dests[route]}; stories: {cfg.stories_mode(route)}"
                 f"{_schedule(cfg.route(route))}{uses}")
    _summary(f"  stories  window {format_duration(cfg.stories.window)}")
    for note in cfg.ignored_settings():
        say(f"{path}: note: {note}")
    for problem in refused:
        say(f"{path}: run refuses to start: {problem}")
    if unrouted:
        kinds = {"rules" if where.startswith("rules[") else "notices"
                 for where, route in sent if route in unrouted}
        say(f"{path}: with ${cfg.discord.token_env} set, run refuses "
            f"{' and '.join(sorted(kinds, reverse=True))} whose route has no [channels] "
            f"entry: {', '.join(unrouted)}")
        return EXIT_USAGE
    if refused:
        return EXIT_USAGE
    if args.live:
        import asyncio

        return asyncio.run(_check_live(cfg))
    return EXIT_OK


def _outlets_summary(sources: Sequence[SourceConfig]) -> None:
    """The outlets corroboration (a rule's min_sources) counts the sources as, and the ones
    that stand for several sources: two feeds of one site are one outlet, which an operator
    setting min_sources wants to see before an alert waits for an outlet that never comes."""
    from watchers.outlets import source_outlet
    from watchers.urls import without_credentials

    groups: dict[str, list[str]] = {}
    for s in sources:
        groups.setdefault(source_outlet(s), []).append(s.name)
    _summary(f"  outlets  {len(groups)} (what min_sources counts)")
    for outlet, names in groups.items():
        if len(names) > 1:
            # A feed on an address is its own outlet, named by its URL's query too: an
            # access key there is redacted as in the sources' lines.
            _summary(f"    {without_credentials(outlet):<16} {', '.join(names)}")


def _summary(line: str) -> None:
    """A line of check's summary, whose values come from the config file: a control, format or
    line-separating character in one (an escape sequence in a path, a line break in a route
    name) is printed as its escape, so it can neither drive the terminal nor forge a line,
    and the user sees what the file holds (as log lines show them: sources.base.printable)."""
    from watchers.sources.base import printable

    print(printable(line, len(line)))


def _not_a_store_file(target: str, config: Path) -> str | None:
    """What is wrong with an SQLite store path that no command could open as a store to
    write (a folder, a device, the config file itself, a file that is not SQLite or may not be
    written, a new file in a folder that may not be written); None for a database file, a
    missing one (it is created) or a PostgreSQL URL."""
    if "://" in target:
        return None
    where = Path(target)
    try:
        if where.exists() and where.resolve() == config.resolve():
            return f"[storage] path {target} is the config file itself"
        if where.is_dir():
            return f"[storage] path {target} is a folder, not a database file"
        if where.exists() and not where.is_file():
            return f"[storage] path {target} is not a regular file (a device or a pipe)"
        if not where.exists() and where.parent.is_dir() and not os.access(
                where.parent, os.W_OK | os.X_OK):
            return f"[storage] path {target} cannot be created: its folder is not writable"
    except OSError as exc:
        return f"[storage] path {target}: {exc.strerror or exc}"
    # What run's store would refuse at open: a file that is not SQLite (a text file), one it
    # may not write (check said ok, run then refused).
    from watchers.errors import StoreError
    from watchers.store import check_store_file

    try:
        check_store_file(target)
    except StoreError as exc:
        return f"[storage] path: {exc}"
    # What it would refuse once it read the file (a newer schema, an incomplete copy, another
    # program's database): check said ok, run then refused.
    import asyncio

    from watchers.store.sqlite.probe import open_refusal

    refusal = asyncio.run(open_refusal(target))
    return f"[storage] path: {refusal}" if refusal is not None else None


async def _check_live(cfg: Config) -> int:
    """Poll every source once now (nothing is stored) and show what the database remembers."""
    from watchers.engine import probe_sources
    from watchers.models import minute_text
    from watchers.store import store_exists

    db_path = cfg.storage.target(cfg.resolve)
    states = {}
    if store_exists(db_path):
        async with await _read_only(db_path) as store:
            states = {s.name: s for s in await store.all_source_states()}
    print("  live", file=sys.stdout)
    probes = await probe_sources(cfg)
    for p in probes:
        if p.error is not None:
            result = f"error: {p.error}"
        else:
            skipped = f", {p.skipped} unreadable item(s) skipped" if p.skipped else ""
            result = f"ok, {p.items} item(s){skipped}"
        st = states.get(p.name)
        history = ""
        if st is not None:
            last = minute_text(st.last_success) if st.last_success else "never"
            history = f" | stored: last success {last}, {st.failures} failure(s) in a row"
            if st.paused:
                history += ", PAUSED"
        print(f"    {p.name:<16} {result}{history}")
    failed = sum(p.error is not None for p in probes)
    return EXIT_OK if not failed else EXIT_ERROR


# --------------------------------------------------------------------------- match


def _path_text(path: Path) -> str:
    """A path as text, a byte of a name that is not UTF-8 escaped (``\\xff``): written raw,
    ``--json``'s line was not UTF-8 (or printing it failed and stopped the command), and
    shown as a space, "x\\xffy.txt" read as the name "x y.txt"."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _path_shown(path: Path) -> str:
    """:func:`_path_text` on one printable line."""
    return shown(_path_text(path))


def _documents(paths: Sequence[str], skip: Callable[[str], None]) -> list[Path]:
    """The files ``match`` reads under ``paths``; an entry of a folder that cannot be looked
    at is handed to ``skip`` (named) and the rest read: one such entry ended the command
    with its error, every other file's result lost."""
    from watchers.errors import NewswatchError
    from watchers.sources.folder import SUFFIXES

    files: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = []
            for f in path.rglob("*"):
                if f.suffix.lower() not in SUFFIXES:
                    continue
                try:
                    if f.is_file():
                        found.append(f)
                except OSError as exc:
                    skip(f"skipped {_path_shown(f)}: {exc.strerror or exc}")
            files.extend(sorted(found))
        elif path.is_file():
            files.append(path)
        elif path.exists():  # a device, a pipe, a socket: nothing to read as a document
            raise NewswatchError(f"{p}: not a regular file or folder")
        else:
            raise NewswatchError(f"{p}: no such file or folder")
    return files


def _schedule(route: Any) -> str:
    """When a route speaks, as `check` shows it: its mode, quiet hours and cap."""
    from watchers.config import format_duration

    if route is None:
        return ""
    parts = []
    if route.mode == "digest":
        # Both given, it posts at each of both (whichever comes first): "digest 08:00" hid
        # an hourly route.
        when = [*route.digest_at]
        if route.digest_every:
            when.append(f"every {format_duration(route.digest_every)}")
        parts.append(f"digest {', '.join(when)}".rstrip())
    if route.quiet_hours:
        through = f", {route.break_through} breaks through" if route.mode != "digest" else ""
        parts.append(f"quiet {route.quiet_hours}{through}")
    if route.max_per_hour and route.mode != "digest":  # a digest route keeps everything
        parts.append(f"at most {route.max_per_hour} an hour")
    if parts and route.timezone != "UTC":
        parts.append(route.timezone)
    return "; " + "; ".join(parts) if parts else ""


# The largest file `match` reads (a folder may hold a disk image or a log beside its articles;
# matching reads at most the first 1,000,000 characters of a text anyway).
MATCH_MAX_BYTES = 32 * 2**20


def cmd_match(args: argparse.Namespace) -> int:

    from watchers.errors import NewswatchError
    from watchers.rules import explain, match_query, parse
    from watchers.rules.matcher import RegexBudget
    from watchers.sources.folder import read_article_file

    if args.threshold is not None and not 50 <= args.threshold <= 100:
        # as a rule's threshold and the query's ~N
        say(f"--threshold: {args.threshold} is out of range; use 50 to 100")
        return EXIT_USAGE
    parse(args.query)
    # With -c, the query is tried as the config's rules are run: its [aliases] and fuzzy
    # threshold, and a document in a folder source's folder under that source's name (for
    # source: terms). Without, the documents' folders name them, and the shipped aliases only.
    threshold, aliases, named = 85.0, None, _folder_names(None)
    if args.config is not None:
        cfg = load(args.config)
        threshold, aliases, named = cfg.threshold, cfg.aliases, _folder_names(cfg)
    if args.threshold is not None:
        threshold = args.threshold
    from bot.progress import ProgressBar

    found = read = 0
    # Thousands of files take a while (30,000: about 11 s): after a second, how far it has
    # got is shown on stderr (a bar on a terminal, a line every few seconds otherwise).
    bar = ProgressBar("match")
    started = time.monotonic()

    def say_(text: str) -> None:
        bar.clear()
        say(text)

    for path in _documents(args.paths or ["seeds"], say_):
        read += 1
        if time.monotonic() - started > MATCH_QUIET_S:
            bar.update(None, f"{read:,} documents read, {found:,} matching", finished=False,
                       every=PROGRESS_EVERY_S)
        try:
            article = read_article_file(path, source=named(path), max_bytes=MATCH_MAX_BYTES)
        except NewswatchError as exc:
            say_(f"skipped {exc}")
            continue
        budget = RegexBudget()
        # Its phrases with slop or a prefix or fuzzy word share the regexes' time, as a rule's
        # do in run: one over a 1 MB file took ten seconds.
        m = match_query(args.query, article, threshold=threshold, aliases=aliases,
                        budget=budget, phrase_budget=budget)
        if budget.exhausted:  # counted as not matching: say so, as run logs it
            say_(f"{_path_shown(path)}: a regex or phrase ran out of time ({budget.seconds:g} s) "
                 "and counted as not matching")
        if m is None:
            continue
        found += 1
        bar.clear()
        if args.json:
            print(json_line({
                "path": _path_text(path),
                "title": article.title,
                "score": round(m.score, 4),
                "highlights": [h.model_dump() for h in m.highlights],
            }))
        else:
            terms = ", ".join(f"{h.text!r}" for h in m.highlights[:8])
            print(f"{_path_shown(path)}  score {m.score:.2f}  {shown(article.title[:70])}")
            print(f"    {terms}")
            if args.explain:
                for line in explain(m):
                    print(f"    {line}")
    bar.clear()
    if not args.json:
        say(f"{found} matching document(s)")
    return EXIT_OK


def _folder_names(cfg: Config | None) -> Callable[[Path], str]:
    """The source name a document at a path gets: that of the config's folder source whose
    folder holds it (the innermost), as ``run`` names it; else its own folder's path."""
    folders: list[tuple[Path, str]] = []
    if cfg is not None:
        for src in cfg.sources:
            folder = getattr(src, "path", None)
            if src.type == "folder" and isinstance(folder, str):
                with contextlib.suppress(OSError, RuntimeError):
                    folders.append((cfg.resolve(folder).resolve(), src.name))
    folders.sort(key=lambda f: len(f[0].parts), reverse=True)

    def named(path: Path) -> str:
        if folders:
            with contextlib.suppress(OSError, RuntimeError):
                real = path.resolve()
                for folder, name in folders:
                    if real.is_relative_to(folder):
                        return name
        return str(path.parent)

    return named


# --------------------------------------------------------------------------- search


class _BadOption(ValueError):
    """A command line option's value is wrong: exit 2, as argparse's own refusals."""


def _since(value: str | None) -> datetime | None:
    from datetime import UTC, datetime

    from watchers.config import parse_duration

    if not value:
        return None
    try:
        return datetime.now(UTC) - parse_duration(value)
    except (ValueError, OverflowError) as exc:
        raise _BadOption(f"--since: {exc}") from None


async def _search(args: argparse.Namespace) -> int:

    from watchers.errors import NewswatchError
    from watchers.search import search
    from watchers.store import store_exists

    cfg = load(args.config)
    path = cfg.storage.target(cfg.resolve)
    if not store_exists(path):
        raise NewswatchError(f"no database at {path} yet: run `newswatch run` first")
    async with await _read_only(path, lookups=True) as store:
        # One indexed read when the source is known; the full count only to say what is.
        if args.source is not None and not (await store.candidate_page(
                fts=None, source=args.source, limit=1)).articles:
            known = await store.count_by_source()
            if args.source not in known:
                names = ", ".join(shown(n) for n in sorted(known)) or "none"
                raise NewswatchError(f"--source: no articles from a source named "
                                     f"{args.source!r}; known: {names}")
        found = await search(store, args.query, since=_since(args.since), limit=args.limit,
                             source=args.source, threshold=cfg.threshold, aliases=cfg.aliases,
                             order="best" if args.best else "newest")
        stories = await _counted_stories(store, cfg, [h.article.id for h in found.hits])
    if args.json:
        for h in found.hits:
            a = h.article
            story = stories.get(a.id)
            print(json_line({
                "id": a.id,
                "source": a.source,
                "title": a.title,
                "url": a.url,
                "published": a.published.isoformat() if a.published else None,
                "score": round(h.match.score, 4),
                "highlights": [x.model_dump() for x in h.match.highlights],
                "story": story.id if story is not None else None,
            }))
    else:
        _print_grouped([h.article for h in found.hits], stories)
    if found.truncated:
        say("the search ran out of time and shows what it found so far; narrow the query")
    if not args.json:
        say(f"{len(found.hits)} result(s)")
    return EXIT_OK


async def _counted_stories(store: Any, cfg: Config, article_ids: Sequence[str]
                           ) -> dict[str, StoryRecord]:
    """The story of each of these articles that has one, with its distinct outlets counted
    (``counted``) as the alerts' waits count them: the sources by the outlets they reported
    as (or, for a story stored before those were kept, by the ones the config file and the
    sources added at run time give them, as a running engine names them)."""
    import dataclasses

    from watchers.outlets import source_outlet

    stories = await store.stories_of(article_ids)
    if not stories:
        return {}
    # The file's sources win a name clash with one added at run time, as in the engine.
    added = [s for s in await store.list_sources() if s.guild_id is None]
    named = {s.name: source_outlet(s) for s in added}
    named.update({s.name: source_outlet(s) for s in cfg.sources})
    store.name_outlets(named)
    counted = await store.outlets_seen([s.id for s in stories.values()])
    return {a: dataclasses.replace(s, counted=counted.get(s.id)) for a, s in stories.items()}


def _print_grouped(articles: Sequence[Article], stories: Mapping[str, StoryRecord]) -> None:
    """One line per result, a story's results together under its first (in result order) with
    the story's id and outlets; an article without a story of several articles stands alone."""
    from watchers.models import day_text

    groups: dict[str, list[Article]] = {}
    for a in articles:
        story = stories.get(a.id)
        key = story.id if story is not None and story.articles > 1 else f"article:{a.id}"
        groups.setdefault(key, []).append(a)
    for key, members in groups.items():
        for i, a in enumerate(members):
            when = day_text(a.published) if a.published else "----------"
            indent = "  " if i else ""
            print(f"{indent}{shown(a.id)}  {when}  {shown(a.source):<12} {shown(a.title[:80])}")
        story = stories.get(members[0].id)
        if story is not None and not key.startswith("article:"):
            outlets = shown(", ".join(story.outlets[:6])) + (", ..." if len(story.outlets) > 6
                                                             else "")
            # Outlets as the alerts count them (two feeds of one site are one); the sources
            # that reported it are listed.
            n = story.counted if story.counted is not None else len(story.outlets)
            print(f"  = story {story.id}: {n} outlet(s), {story.articles} "
                  f"article(s): {outlets}")


def cmd_search(args: argparse.Namespace) -> int:
    import asyncio

    from watchers.models import storable

    try:
        _since(args.since)  # a bad option is refused before the store is opened
        if args.source is not None and storable(args.source) != args.source:
            # A byte that is not UTF-8 (the shell passes it as a lone surrogate): no source
            # is named so, and the store could not encode it (a traceback on SQLite).
            raise _BadOption(f"--source: '{_path_text(Path(args.source))}' is not UTF-8 text")
    except _BadOption as exc:
        say(str(exc))
        return EXIT_USAGE
    return asyncio.run(_search(args))


# --------------------------------------------------------------------------- import

# Seconds between progress lines when stderr is not a terminal (a log, a CI job).
PROGRESS_EVERY_S = 5.0
# Seconds `match` works before it shows how far it has got (a folder of a few files says
# nothing).
MATCH_QUIET_S = 1.0
# Bad lines named one by one, and lines imported under a new id, each; past this only the
# count goes on.
MAX_BAD_SHOWN = 100


class _ImportReport:
    """Progress and bad lines of an import, on stderr (see :class:`bot.progress.ProgressBar`:
    a line every ``PROGRESS_EVERY_S`` seconds when stderr is not a terminal)."""

    def __init__(self, name: str) -> None:
        from bot.progress import ProgressBar

        self.name = name
        self.bar = ProgressBar("import")
        self.bad_seen = 0
        self.renamed_seen = 0
        self.lines = 0  # read so far, as the last progress report said

    def bad_line(self, number: int, reason: str) -> None:
        self.bad_seen += 1
        self._named(self.bad_seen, f"{self.name}:{number}: {reason}",
                    "more bad lines; only their count is shown from here on")

    def renamed(self, number: int, wanted: str, stored: str) -> None:
        # Imported, and no bad line: counted apart (they used up the bad lines' room, and the
        # one bad line after a hundred of them was never named).
        self.renamed_seen += 1
        self._named(self.renamed_seen,
                    f"{self.name}:{number}: its id {shown(wanted)!r} is another stored "
                    f"article's (other content, another link): imported as {stored}",
                    "more lines imported under a new id; only their count is shown from here "
                    "on")

    def _named(self, seen: int, line: str, past: str) -> None:
        if seen <= MAX_BAD_SHOWN:
            self.bar.clear()
            say(line)
        elif seen == MAX_BAD_SHOWN + 1:
            self.bar.clear()
            say(past)

    def progress(self, p: Any) -> None:
        self.lines = p.lines
        # Lines a second, not articles: a resumed import goes through the lines stored the
        # first time as duplicates, and showed "0/s" while it did.
        rate = p.lines / max(time.monotonic() - self.bar.started, 1e-9)
        counts = (f"{p.lines:,} line{'' if p.lines == 1 else 's'} · imported {p.imported:,} · "
                  f"duplicates {p.duplicates:,} "
                  f"· bad {p.bad:,} · {rate:,.0f} lines/s")
        # A file that grows while it is read would pass 100%.
        self.bar.update(min(1.0, p.bytes_read / p.total_bytes) if p.total_bytes else None, counts,
                        finished=p.bytes_read >= p.total_bytes, every=PROGRESS_EVERY_S)

    def done(self) -> None:
        self.bar.done()


async def _import(args: argparse.Namespace, report: _ImportReport) -> int:
    cfg = load(args.config)  # a config's error is said before the engine is imported (0.2 s)

    from watchers.engine import open_engine
    from watchers.errors import StoreCorruptError, StoreError, StoreGoneError

    path = Path(args.file)
    started = False
    # Opening a large store and putting a file's lines in date order take seconds before
    # the first batch is counted.
    report.bar.begin(f"reading {shown(args.file)}")
    try:
        # Not started: nothing is polled or delivered; the store's process lock is held, so
        # the import refuses to run beside `newswatch run` (and the other way round).
        async with open_engine(cfg, start=False) as engine:
            started = True
            summary = await engine.import_articles(path, on_progress=report.progress,
                                                   on_bad_line=report.bad_line,
                                                   on_renamed=report.renamed)
    except StoreError as exc:
        if not started:
            raise
        # A full disk, a database gone: what was committed before stays, as after Ctrl-C.
        report.done()
        say(f"{args.file}: stopped after about {report.lines:,} lines: {exc}")
        if isinstance(exc, StoreCorruptError):
            pass  # the one thing to do is said: nothing is finished by running it again
        elif isinstance(exc, StoreGoneError):
            # What it had imported went with the file: "kept" was not true.
            say(f"{args.file}: what was imported went with that file; the same command again "
                "imports the whole file into the database at that path")
        else:
            say(f"{args.file}: what was imported is kept, and the same command again finishes "
                "the rest")
        return EXIT_ERROR
    finally:
        report.done()
    renamed = f" ({len(summary.renamed):,} under a new id)" if summary.renamed else ""
    say(f"{args.file}: {summary.lines:,} line{'' if summary.lines == 1 else 's'} · imported "
        f"{summary.imported:,}{renamed} · duplicates {summary.duplicates:,} · bad "
        f"{summary.bad:,}")
    if summary.changed:
        say(f"{args.file}: the file changed while it was read (written to, cut short or "
            "replaced): lines may be missing. Once it is complete, the same command again "
            "imports what is missing and skips what is stored")
    return EXIT_OK if not summary.bad and not summary.changed else EXIT_ERROR


def cmd_import(args: argparse.Namespace) -> int:
    import asyncio

    from watchers.errors import NewswatchError

    path = Path(args.file)
    if not path.is_file():
        raise NewswatchError(not_a_file(path))
    report = _ImportReport(args.file)
    from bot.logs import setup_store_logging

    setup_store_logging()  # an upgrade or a rebuild of the store at open says how far it got
    try:
        # A stop from outside (kill, a closed terminal) is told like Ctrl-C: it ended the
        # import without a word.
        with stopped_like_ctrl_c():
            return asyncio.run(_import(args, report))
    except KeyboardInterrupt:
        # Each batch is one transaction: what was committed stays, the batch under way does
        # not; the same command again skips what is stored (counted as duplicates). (The
        # bar is done: _import ends it on every way out.)
        say(f"{args.file}: stopped after about {report.lines:,} lines; what was imported is "
            "kept, and the same command again finishes the rest")
        return 130


# --------------------------------------------------------------------------- run


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    cfg = load(args.config, watching=True)
    _setup_logging(args.verbose)
    _more_open_files()
    from bot.runner import run

    # A stop from outside (kill, a closed terminal) while it starts, or during --once, is
    # taken as Ctrl-C; once it watches, each stops it as Ctrl-C does (bot.runner.StopSignals).
    # SIGHUP's default ended it without a word.
    with stopped_like_ctrl_c():
        try:
            return asyncio.run(run(cfg, once=args.once, console=args.console, role=args.role,
                                   lease=args.lease, safety_poll=args.safety_poll))
        except KeyboardInterrupt:
            # Stopped while it starts: opening the store (an upgrade, or a rebuild of its
            # lookup indexes, can take minutes and goes on where it got at the next start).
            # It ended without a word.
            say("stopping")
            return 130


# Open files a running newswatch asks the system for (its connections, up to 100 at once,
# each of a feed's fetches, the store, the modules it imports as it goes).
OPEN_FILES = 4096


def _more_open_files() -> None:
    """Raise the soft limit of open files towards :data:`OPEN_FILES`, as far as the hard limit
    allows. Under a low soft limit (a `ulimit -n 64` shell) every feed failed with "Too many
    open files", counted as its own failure (toward its pause), and a module imported lazily
    failed with a traceback naming its file."""
    try:
        import resource
    except ImportError:  # not a POSIX system
        return
    with contextlib.suppress(OSError, ValueError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = OPEN_FILES if hard == resource.RLIM_INFINITY else min(OPEN_FILES, hard)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            log.info("open files: the soft limit raised from %d to %d", soft, wanted)


def _lease(value: str) -> float:
    """``run --lease``: a duration no shorter than a poll worker's lease may be."""
    from watchers.roles import MIN_LEASE

    seconds = _run_duration(value)
    if seconds < MIN_LEASE.total_seconds():
        raise argparse.ArgumentTypeError(
            f"a lease must be at least {MIN_LEASE.total_seconds():g}s, not {value!r} "
            "(it is renewed every third of it)")
    return seconds


def _run_duration(value: str) -> float:
    """The seconds of a positive duration such as 30s or 2m (``run --lease``,
    ``--safety-poll``)."""
    from watchers.config import parse_duration

    try:
        seconds = parse_duration(value).total_seconds()
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive duration, not {value!r}")
    return seconds


def _limit(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if not 1 <= n <= 1000:
        raise argparse.ArgumentTypeError(f"expected a number from 1 to 1000, not {value!r}")
    return n


def _around(query: str, column: int, width: int = 70) -> tuple[str, int]:
    """The part of a (possibly huge) query around ``column``, and the caret's offset in it."""
    start = max(0, column - 1 - width // 2)
    # A control or format character (an escape sequence, a direction override) stands as one
    # replacement character: echoed as it was, it acted on the terminal or turned the line
    # around, and the caret under it pointed elsewhere.
    shown = "".join("\ufffd" if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c
                    for c in query[start:start + width])
    prefix = "…" if start else ""
    suffix = "…" if start + width < len(query) else ""
    # The caret goes under the column as the terminal shows it: a wide character (中) takes two
    # cells, a combining accent none (the caret stood one cell off for each).
    return prefix + shown + suffix, _cells(prefix + shown[:column - 1 - start])


def _cells(text: str) -> int:
    """How many terminal cells ``text`` takes: two for a wide or fullwidth character, none for a
    combining mark or a zero-width one, one for any other."""
    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me")
               else 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def _add_run(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    run = sub.add_parser("run", help="watch sources and deliver alerts")
    config_arg(run)
    run.add_argument("--once", action="store_true", help="poll every source once, deliver, exit")
    run.add_argument("--console", action="store_true",
                     help="deliver to this terminal even if a Discord token is set")
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    run.add_argument("--role", choices=("all", "poll", "deliver", "bot"), default="all",
                     help="all (default): one process does everything; poll, deliver, bot: "
                          "this process's share of the work, beside others on the same "
                          "PostgreSQL database ([storage] url)")
    run.add_argument("--lease", type=_lease, default="60s",
                     metavar="DURATION",
                     help="--role poll: how long a killed worker's sources wait before "
                          "another worker takes them (default 60s)")
    run.add_argument("--safety-poll", type=_run_duration, default="30s",
                     metavar="DURATION",
                     help="--role deliver: how often the outbox is read when no "
                          "notification arrived (default 30s)")
    run.set_defaults(func=cmd_run)


def _add_check(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    check = sub.add_parser("check", help="validate a config file and summarise it")
    config_arg(check)
    check.add_argument("--live", action="store_true",
                       help="also poll every source once now and show its stored health")
    check.set_defaults(func=cmd_check)


def _add_match(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    match = sub.add_parser("match", help="try a query on files or folders (no store needed)")
    match.add_argument("query")
    match.add_argument("paths", nargs="*", metavar="PATH", default=[],
                       help="files or folders (default: seeds/)")
    match.add_argument("--json", action="store_true", help="one JSON object per matching document")
    match.add_argument("--explain", action="store_true", help="show each term's evidence")
    match.add_argument("--threshold", type=int, default=None,
                       help="fuzzy similarity, 50 to 100 (default: the config's with -c, "
                            "else 85)")
    match.add_argument("-c", "--config", metavar="FILE",
                       help="try the query as this config's rules run: its [aliases], "
                            "threshold and folder sources' names (for source:)")
    match.set_defaults(func=cmd_match)


def _add_search(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    search = sub.add_parser("search", help="search stored articles with the rule language")
    search.add_argument("query")
    config_arg(search)
    search.add_argument("--since", metavar="DURATION",
                        help="only articles of this last while, e.g. 24h, 7d (default: all)")
    search.add_argument("--limit", type=_limit, default=10,
                        help="how many results, 1 to 1000 (default 10)")
    search.add_argument("--source", help="only this source")
    search.add_argument("--best", action="store_true", help="best first instead of newest first")
    search.add_argument("--json", action="store_true", help="one JSON object per result")
    search.set_defaults(func=cmd_search)


def _add_import(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    imp = sub.add_parser(
        "import", help="load history from a JSON Lines file (matched, never alerted)",
        description="Load articles from FILE, one JSON object per line with id, title, text, "
                    "url, date (ISO 8601) and source; title is required. Each is stored with "
                    "the matches of the current rules, so /recent, /search and rule counts see "
                    "it, and none alerts. Bad lines are named with their number (the first "
                    "100; the rest are counted) and skipped; the exit status is 1 if there "
                    "were any. Refuses to run while "
                    "`newswatch run` uses the same database.")
    imp.add_argument("file", metavar="FILE")
    config_arg(imp)
    imp.set_defaults(func=cmd_import)


# Each command's names and what adds it to the parser, in the order `--help` lists them.
_COMMANDS: tuple[tuple[tuple[str, ...], Callable[[Any], None]], ...] = (
    (("run",), _add_run),
    (("check",), _add_check),
    (("match",), _add_match),
    (("search",), _add_search),
    (("import",), _add_import),
    (("stories",), stories_cli.add_parser),
    (("sources",), sources_cli.add_parser),
    (("trend",), trend_cli.add_parser),
    (("migrate", "copy"), store_cli.add_parsers),
)


def version() -> str:
    """``newswatch X.Y.Z``: the installed distribution's version, read only when asked (not on
    every start: ``--help`` and a usage error load no package metadata), or where the code runs
    from a source tree that was never installed, that of its pyproject.toml."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return f"newswatch {installed('newswatch')}"
    except PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            with pyproject.open("rb") as fh:
                return f"newswatch {tomllib.load(fh)['project']['version']}"
        except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError):
            return "newswatch (version unknown: not installed)"


class _Version(argparse.Action):
    """``--version``: argparse's own action wants the text when the parser is built, which
    would read the package metadata on every start."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0,
                         help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        # A write standard output refuses is kept by _Output and said by main, as for --help.
        with contextlib.suppress(OSError):
            print(version())
        parser.exit()


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``newswatch`` command line; with ``command``, only that command's part of it (when
    it names one), which parses that command's arguments exactly as the whole does."""
    p = argparse.ArgumentParser(
        prog="newswatch",
        description="Watch news sources, match rules, and alert a Discord team (or a terminal).",
    )
    p.add_argument("--version", action=_Version, help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    known = any(command in names for names, _ in _COMMANDS)
    for names, add in _COMMANDS:
        if not known or command in names:
            add(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _main(argv)
    except SystemExit:  # argparse's --help and usage errors
        if _unwritten() is None:
            raise
        code = EXIT_ERROR
    except BrokenPipeError:
        if not _UNWRITTEN:
            raise  # not standard output's
        code = EXIT_ERROR
    failed = _unwritten()
    if isinstance(failed, BrokenPipeError):
        # The reader went away (`newswatch search … | head`): quietly, with the status a
        # command ended by SIGPIPE has.
        return 128 + signal.SIGPIPE
    if failed is not None:
        # The results (or help) never reached standard output (a full disk, a device that
        # refuses them): said as such, not as a bare "No space left on device".
        say(f"could not write the output to standard output: {failed.strerror or failed}")
        return code or EXIT_ERROR  # a failure of its own (usage, Ctrl-C) keeps its status
    return code


def _unwritten() -> OSError | None:
    """Why standard output cannot take what is waiting to be written, if it cannot. What a
    failed write left in the buffer is then dropped, so the interpreter's own flush at exit
    does not fail again with a traceback."""
    stream = sys.stdout
    if stream is not None and not _UNWRITTEN:
        with contextlib.suppress(OSError, ValueError):  # ValueError: closed
            stream.flush()  # an OSError is kept by _Output
    # One look: run's console writer thread may forget a failure it made good meanwhile.
    kept = _UNWRITTEN[:1]
    if not kept:
        return None
    if stream is not None:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, stream.fileno())
            os.close(null)
    return kept[0]


_UNWRITTEN: list[OSError] = []  # why standard output refused what was written to it


class _Output:
    """Standard output as the command writes to it, remembering why a write failed (the
    stream drops what it could not write, so a later flush cannot tell)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except OSError as exc:
            _UNWRITTEN.append(exc)
            raise

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            _UNWRITTEN.append(exc)
            raise

    def write_failed(self, exc: OSError) -> None:
        """Keep ``exc``, a write made to the descriptor past this stream that failed (run's
        console sink writes its cards there, see bot.console), as a failure of its own."""
        _UNWRITTEN.append(exc)

    def write_made_good(self, exc: OSError) -> None:
        """Forget ``exc``, kept by write_failed: what that write could not write was written
        since (the console sink's retry of the same card finished it), so nothing was lost
        and the command need not end saying its output never arrived."""
        with contextlib.suppress(ValueError):
            _UNWRITTEN.remove(exc)

    @property
    def buffer(self) -> _Output:
        """The binary stream under it (an OPML export writes bytes), watched the same way."""
        return _Output(self._stream.buffer)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _main(argv: Sequence[str] | None) -> int:
    if argv is None and sys.stdout is not None:
        # The installed `newswatch` command: output piped into `head` ends quietly, as any
        # command line tool's does, not with a BrokenPipeError (see main). SIGPIPE stays
        # ignored, as Python leaves it: its default action also ended the process, without a
        # word, at a write to a socket its peer had closed (a database server restarting).
        sys.stdout = _Output(sys.stdout)
    argv = sys.argv[1:] if argv is None else list(argv)
    problem = _output_problem() or _empty_argument(argv)
    if problem is not None:
        say(problem)
        return EXIT_USAGE
    # Only the named command's parser is built: building all dozen of them costs a few
    # milliseconds on every start. The top level has no options of its own but -h and
    # --version, so the command is the first word; anything else (-h, a typo) gets the whole
    # parser.
    if argv and (argv[0] in ("-c", "--config") or argv[0].startswith("--config=")):
        # `newswatch -c FILE search …` was refused as "invalid choice: 'FILE'", naming the
        # file as if it were the command.
        say("-c/--config goes after the command: newswatch COMMAND -c FILE … "
            "(see newswatch --help)")
        return EXIT_USAGE
    try:
        parser = build_parser(argv[0] if argv else None)
        args, extra = parser.parse_known_args(argv)
        if extra and isinstance(getattr(args, "paths", None), list):
            # `match troops --json seeds`: argparse takes a list of paths only before the
            # options, and refused the later ones with the top level's usage. After "--"
            # every word is a path, a name starting with "-" too.
            cut = extra.index("--") if "--" in extra else len(extra)
            head, tail = extra[:cut], extra[cut + 1:]
            if not any(e.startswith("-") for e in head):
                args.paths, extra = [*args.paths, *head, *tail], []
        if extra:
            # Refused by the command's own parser, with its usage (the top level's named
            # every command but the one given).
            _command_parser(parser, argv).error(
                f"unrecognized arguments: {' '.join(extra)}")
        from watchers.errors import ConfigError, NewswatchError, QuerySyntaxError
    except KeyboardInterrupt:  # Ctrl-C while the command starts
        return 130

    try:
        return int(args.func(args))
    except ConfigError as exc:
        # An error found past the file's own checks (what run refuses with --role, or with
        # a webhook variable unset) is of the file the command read, too.
        file = exc.file
        if file is None and hasattr(args, "config"):
            with contextlib.suppress(ConfigError):  # no config file at all: said as is
                file = str(config_path(args.config))
        where = f"{file}: " if file else ""
        say(f"{where}{len(exc.issues)} error(s) in the configuration")
        for issue in exc.issues:
            print(f"  {issue}", file=sys.stderr)
        return EXIT_USAGE
    except QuerySyntaxError as exc:
        say(f"query error: {exc}")
        shown, caret = _around(exc.query, exc.column)
        print(f"  {shown}\n  {' ' * caret}^", file=sys.stderr)
        return EXIT_USAGE
    except NewswatchError as exc:
        say(str(exc))
        return EXIT_ERROR
    except OSError as exc:
        if exc.filename is None and _unwritten() is not None:
            return EXIT_ERROR  # standard output refused the results: main says so
        # A path the file system refuses (a folder where a file should be, a name too long,
        # no permission) that a command did not name itself: one line naming it.
        name = str(exc.filename) if exc.filename is not None else ""
        where = f"{name[:120]}…: " if len(name) > 120 else f"{name}: " if name else ""
        say(f"{where}{exc.strerror or exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if _interrupted(exc):
            return 130
        raise


def _output_problem() -> str | None:
    """Make standard output and error print any text (a terminal whose locale is not UTF-8
    gets escapes, ``\\u2192``, for what it cannot show: inside a JSON string, the same
    character); or say why nothing can be written. A Latin-1 locale made every command that
    prints a headline or an arrow end in a UnicodeEncodeError, and the console delivery of
    `run` held every alert back; with standard output closed, results went nowhere and the
    command said it had found them."""
    if sys.stdout is None:
        return "standard output is closed: the results could be written nowhere"
    for stream in (sys.stdout, sys.stderr):
        encoding = encoding_of(stream)
        reconfigure = getattr(stream, "reconfigure", None)
        if encoding not in ("utf-8", "utf8") and reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="backslashreplace")
    return None


def _empty_argument(argv: Sequence[str]) -> str | None:
    """What an empty argument stood for, if one was given: no option or argument of the
    command takes one, and each was read as if left out (``--since ""`` as the default day,
    ``-c ""`` as config.toml, ``match troops ""`` as this folder)."""
    for i, arg in enumerate(argv):
        if arg.startswith("-") and arg.endswith("=") and len(arg) > 2 and arg != "--=":
            # --since= and -c= (argparse reads the short one's value as empty too)
            return f"{arg[:-1]}: an empty value; give one, or leave the option out"
        if arg == "":
            before = argv[i - 1] if i else ""
            if before.startswith("-") and "=" not in before and before != "--":
                return f"{before}: an empty value; give one, or leave the option out"
            return (f"argument {i + 1} is empty (''): give a value, or leave it out")
    return None


def _command_parser(parser: argparse.ArgumentParser, argv: Sequence[str]
                    ) -> argparse.ArgumentParser:
    """The parser of the command ``argv`` names (``sources export``: the subcommand's), or
    ``parser`` itself when its first word names none."""
    for word in argv:
        found = None
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                found = action.choices.get(word)
        if not isinstance(found, argparse.ArgumentParser):
            return parser
        parser = found
    return parser


def _interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is a Ctrl-C that a library wrapped: pydantic-core turns one that lands
    while it builds a model's validator (the config's models, at their first import) into a
    SchemaError naming it."""
    return type(exc).__name__ == "SchemaError" and "KeyboardInterrupt" in str(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
