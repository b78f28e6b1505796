"""``newswatch migrate [-c FILE]`` and ``newswatch copy --from SRC --to DST``.

``migrate`` applies the configured store's pending schema migrations and says from which
version to which. ``copy`` moves a store to another database (SQLite ↔ PostgreSQL, or the same
kind) through :func:`watchers.store.copy.copy_store`: progress on stderr (a bar redrawn in place
on a terminal, else a line every few seconds), then a table of every table's row count on both
sides on stdout. Exit 0 when the counts agree, 1 on a mismatch or an error, 130 on Ctrl-C; an
unfinished copy leaves the destination marked incomplete and the message says how to start over.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from bot.cli_config import config_arg, load
from bot.logs import say, stopped_like_ctrl_c
from bot.progress import ProgressBar

if TYPE_CHECKING:
    # Imported when a command runs: the copy code loads the PostgreSQL driver, which no other
    # command should pay for at start-up (nor asyncio, which `newswatch --help` does without).
    from watchers.store.copy import CopyProgress, CopySummary

__all__ = ["add_parsers"]

EXIT_OK, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 130
# Seconds between progress lines when stderr is not a terminal (a log, a CI job).
PROGRESS_EVERY_S = 5.0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``migrate`` and ``copy`` subcommands to ``newswatch``'s subparsers."""
    mig = sub.add_parser(
        "migrate", help="apply the store's pending schema migrations",
        description="Bring the configured store (the SQLite file or the PostgreSQL database of "
                    "[storage]) to this newswatch's schema version, creating it if there is "
                    "none, and say from which version to which. A database newer than this "
                    "newswatch, or not newswatch's, is refused untouched. Takes the store's "
                    "writer lock: run it before starting the workers.")
    config_arg(mig)
    mig.set_defaults(func=cmd_migrate)

    cp = sub.add_parser(
        "copy", help="copy a store to another database (e.g. SQLite to PostgreSQL)",
        description="Copy every table of the store SRC into the new, empty store DST, then "
                    "verify the row count of every table on both sides. Each is an SQLite "
                    "file, a postgresql:// URL, or env:VAR holding either. SRC must not be "
                    "in use by a running newswatch and must be at the current schema version "
                    "(see migrate); DST must hold no data. An interrupted or failed copy "
                    "leaves DST marked incomplete: no newswatch opens it, and the copy says "
                    "how to start over.")
    cp.add_argument("--from", dest="source", required=True, metavar="SRC",
                    help="the store to copy (file, postgresql:// URL or env:VAR)")
    cp.add_argument("--to", dest="destination", required=True, metavar="DST",
                    help="the new store (file, postgresql:// URL or env:VAR)")
    cp.set_defaults(func=cmd_copy)


# --------------------------------------------------------------------------- migrate


def cmd_migrate(args: argparse.Namespace) -> int:
    import asyncio

    from bot.logs import setup_store_logging
    from watchers.rules.lookup import lookup_terms, places_of
    from watchers.rules.text import KEYS_VERSION
    from watchers.store.copy import describe_target, migrate

    cfg = load(args.config)
    target = cfg.storage.target(cfg.resolve)
    setup_store_logging()  # an upgrade or a rebuild of a large store says how far it got
    try:
        # A stop from outside (kill, a closed terminal) is told like Ctrl-C: it ended with
        # exit 130 and no word of what was left.
        with stopped_like_ctrl_c():
            done = asyncio.run(migrate(target, terms_of=lookup_terms,
                                       keys_version=KEYS_VERSION, places_of=places_of))
    except KeyboardInterrupt:
        say(f"interrupted: {describe_target(target)} is left as far as it got; newswatch "
            "migrate (or the next command that writes to it) goes on from there")
        return EXIT_INTERRUPTED
    if done.before == 0:
        print(f"{done.target}: created at schema version {done.after}")
    elif done.before == done.after:
        print(f"{done.target}: already at schema version {done.after}")
    else:
        print(f"{done.target}: migrated from schema version {done.before} to {done.after}")
    return EXIT_OK


# --------------------------------------------------------------------------- copy


class _CopyReport:
    """Progress of a copy on stderr (see :class:`bot.progress.ProgressBar`: a line every
    ``PROGRESS_EVERY_S`` seconds when stderr is not a terminal)."""

    def __init__(self) -> None:
        self.bar = ProgressBar("copy")

    def progress(self, p: CopyProgress) -> None:
        rate = p.rows / max(time.monotonic() - self.bar.started, 1e-9)
        counts = (f"{p.table} {p.table_rows:,}/{p.table_total:,} · all {p.rows:,}/{p.total:,} "
                  f"rows · {rate:,.0f}/s")
        self.bar.update(p.rows / p.total if p.total else 1.0, counts,
                        finished=p.rows >= p.total, every=PROGRESS_EVERY_S)

    def done(self) -> None:
        self.bar.done()


def _print_counts(summary: CopySummary) -> None:
    width = max(len(c.table) for c in summary.counts)
    print(f"{'table':<{width}}  {'source':>12}  {'destination':>12}")
    for c in summary.counts:
        flag = "" if c.source == c.destination else "  MISMATCH"
        print(f"{c.table:<{width}}  {c.source:>12,}  {c.destination:>12,}{flag}")


def cmd_copy(args: argparse.Namespace) -> int:
    import asyncio

    from watchers.rules.lookup import lookup_terms, places_of
    from watchers.rules.text import KEYS_VERSION
    from watchers.store.copy import copy_store, describe_target, resolve_target, start_over

    source = resolve_target(args.source, what="--from")
    destination = resolve_target(args.destination, what="--to")
    src_name, dst_name = describe_target(source), describe_target(destination)
    report = _CopyReport()
    try:
        # A stop from outside (kill, a closed terminal) is told like Ctrl-C: what was left,
        # and how to start over.
        with stopped_like_ctrl_c():
            summary = asyncio.run(copy_store(source, destination, terms_of=lookup_terms,
                                             keys_version=KEYS_VERSION, places_of=places_of,
                                             on_progress=report.progress))
    except KeyboardInterrupt:
        report.done()
        say(f"interrupted: the copy did not finish; if {dst_name} was written it is marked as "
            f"an incomplete copy (no newswatch opens it). To start over, "
            f"{start_over(destination)}")
        return EXIT_INTERRUPTED
    finally:
        report.done()
    _print_counts(summary)
    rate = summary.rows / max(summary.seconds, 1e-9)
    if summary.mismatched:
        say(f"the row counts differ in {', '.join(summary.mismatched)}: {dst_name} is left "
            f"marked as an incomplete copy; to start over, {start_over(destination)}")
        return EXIT_ERROR
    say(f"copied {summary.rows:,} rows from {src_name} to {dst_name} in "
        f"{summary.seconds:.1f} s ({rate:,.0f} rows/s); every table's count agrees")
    return EXIT_OK
