"""``newswatch sources import FILE.opml`` and ``newswatch sources export [-o FILE]``.

Import adds every feed of an OPML file as ``/sources add`` would (same URL guard, same name
rules; see :mod:`watchers.opml`) and prints one line per feed: added, skipped (with the source
or line it duplicates) or refused (with the reason). Exit status: 0 when no feed was refused,
1 when at least one was (the others are still added), 2 when the file is missing or is not a
usable OPML file (nothing is added). It opens the engine without starting it, so nothing is
polled, and it holds the database's process lock: it refuses to run beside ``newswatch run``.

Export writes every enabled feed source (the config file's and those added at run time) as
OPML 2.0 to FILE or standard output. It reads the database read-only, so it works beside a running
newswatch.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli_config import WriteFailed, config_arg, config_path, load, write_output
from bot.logs import say

if TYPE_CHECKING:
    # asyncio, the config models, the sources and watchers.opml are loaded by these
    # subcommands when they run, not by every `newswatch` command.
    from watchers.config import Config
    from watchers.opml import OpmlReport

__all__ = ["add_parser", "run"]

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


def add_parser(subparsers: Any) -> None:
    """Add the ``sources`` subcommand (``import`` and ``export``) to ``newswatch``."""
    sp = subparsers.add_parser("sources", help="import or export feed sources as OPML")
    sub = sp.add_subparsers(dest="sources_command", required=True, metavar="ACTION")

    imp = sub.add_parser(
        "import", help="watch every feed of an OPML file",
        description="Add every feed (outline with an xmlUrl) of FILE as /sources add would: "
                    "each URL is checked by the same guard; a feed whose URL is already "
                    "watched is skipped; names come from the titles. One line per feed. Exit "
                    "status 0 if none was refused, 1 if some were, 2 if FILE is not OPML. "
                    "Refuses to run while `newswatch run` uses the same database.")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--every", metavar="DURATION", default="10m",
                     help="how often to poll each feed (default 10m, at least 1m)")
    config_arg(imp)
    imp.set_defaults(func=run)

    exp = sub.add_parser(
        "export", help="write every enabled feed source as OPML",
        description="Write every enabled feed source, from the config file and added at run "
                    "time, as OPML 2.0 to FILE (default: standard output). Reads the database "
                    "read-only, so it works beside a running newswatch.")
    exp.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    config_arg(exp)
    exp.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``newswatch sources import|export``; see the module docstring for exit statuses."""
    if args.sources_command == "import":
        return _run_import(args)
    return _run_export(args)


# --------------------------------------------------------------------------- import


def _read(path: Path) -> bytes:
    from watchers.opml import MAX_BYTES, OpmlError

    if not path.is_file():
        raise OpmlError("no such file" if not path.exists() else "not a file")
    with path.open("rb") as fh:
        # One byte over the cap is enough for the parser to refuse it by size.
        return fh.read(MAX_BYTES + 1)


def _run_import(args: argparse.Namespace) -> int:
    import asyncio

    from watchers.config import parse_duration

    try:
        every = parse_duration(args.every)
    except ValueError as exc:
        say(f"--every: {exc}")
        return EXIT_USAGE
    if every < timedelta(minutes=1):
        say(f"--every: a feed is polled at most once a minute, not every {args.every}")
        return EXIT_USAGE
    from watchers.opml import OpmlError, parse_opml

    cfg = load(args.config)
    path = Path(args.file)
    try:
        data = _read(path)
        parse_opml(data)  # a file that is not OPML is refused before the database is opened
        report = asyncio.run(_import(cfg, data, every))
    except OpmlError as exc:
        say(f"{path}: {exc}")
        return EXIT_USAGE
    print(_listing(report))
    say(f"{path}: {report.summary()}")
    return EXIT_REFUSED if report.refused else EXIT_OK


async def _import(cfg: Config, data: bytes, every: timedelta) -> OpmlReport:
    from watchers.engine import open_engine
    from watchers.opml import import_opml

    async with open_engine(cfg, start=False) as engine:
        return await import_opml(engine, data, created_by="cli", every=every)


def _listing(report: OpmlReport) -> str:
    from watchers.urls import without_credentials

    lines = []
    for o in report.outcomes:
        # A feed's URL without its credentials (a ?token=), as check and the log show it.
        url = without_credentials(o.entry.url)
        what = o.entry.title or url
        if o.status == "added":
            extra = f" ({o.reason})" if o.reason else ""
            lines.append(f"added    line {o.entry.line:<5} {o.name}  {url}{extra}")
        else:
            lines.append(f"{o.status:<8} line {o.entry.line:<5} {what}: {o.reason}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- export


def _opml_like(head: bytes) -> bool:
    """Whether a file starting with ``head`` (its first KiB) is an OPML file to replace: its
    root element, after an XML declaration or comments, is ``<opml``. Any XML file passed
    (an export wrote over a file of other data that began with ``<?xml``)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head.decode("utf-16", "ignore")
    else:
        text = head.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "ignore")
    # Past the XML declaration, processing instructions, comments and a DOCTYPE, the first
    # element: "<opml" anywhere in the first KiB let an export overwrite an XSLT stylesheet
    # that held a literal <opml>, or a file that mentioned one in a comment.
    return _ROOT.match(text) is not None


_ROOT = re.compile(r"\s*(?:<\?.*?\?>\s*|<!--.*?-->\s*|<!DOCTYPE[^>]*>\s*)*<opml[\s>/]",
                   re.DOTALL | re.IGNORECASE)


def _run_export(args: argparse.Namespace) -> int:
    import asyncio

    from watchers.opml import export_opml

    cfg = load(args.config)
    feeds = [f for f in asyncio.run(_sources(cfg)) if f.kind == "feed"]
    data = export_opml(feeds)
    if args.output:
        refused = write_output(Path(args.output), data, what="OPML file", looks_like=_opml_like,
                               cfg=cfg, config_file=config_path(args.config))
        if refused is not None:
            say(f"-o: {refused}")
            return EXIT_REFUSED if isinstance(refused, WriteFailed) else EXIT_USAGE
        say(f"{args.output}: {len(feeds)} feed(s)")
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return EXIT_OK


class _Feed:
    """A source as export needs it (the fields of a SourceView it reads)."""

    def __init__(self, name: str, kind: str, where: str, outlet: str | None = None) -> None:
        self.name, self.kind, self.where, self.outlet = name, kind, where, outlet


async def _sources(cfg: Config) -> list[_Feed]:
    """The sources a started engine would run (the engine's own merge of the file's and the
    stored ones)."""
    from watchers.engine import merged_sources
    from watchers.errors import NewswatchError, StoreEmptyError, StoreError
    from watchers.sources import describe_source
    from watchers.store import open_store, store_exists

    path = cfg.storage.target(cfg.resolve)
    stored = []
    if store_exists(path):
        try:
            store = await open_store(path, readonly=True)
        except StoreEmptyError:
            pass  # made for newswatch, not used yet (createdb): the file's sources alone
        except StoreError:
            raise  # names the database already (and says why it cannot be read)
        except NewswatchError as exc:
            raise NewswatchError(f"{path}: cannot read the database: {exc}") from None
        else:
            try:
                stored = await store.list_sources()
            finally:
                await store.aclose()
    return [_Feed(s.name, s.type, describe_source(s), s.outlet)
            for s in merged_sources(cfg, stored)]
