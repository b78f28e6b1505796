"""``newswatch trend QUERY_OR_RULE [--since 7d] [--until DATE] [-c FILE] [--png OUT]``.

A rule's (by name) or a query's matches per hour (periods up to 3 days) or per day, with each
bucket's baseline band and surges by :mod:`watchers.surge`'s statistic — the numbers ``/trend``
draws. Opens the database read-only (no lock: it runs beside ``newswatch run``). With ``--png``
it writes the chart; without, it prints one line per bucket. ``--until`` moves the end of the
period from now to a date, for history loaded with ``newswatch import``.

The lookup mirrors :meth:`watchers.engine.Engine.trend` (an Engine cannot open a store
read-only): rule match times from the store, else a budgeted search, counted by when the
articles were published.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli_config import WriteFailed, config_arg, config_path, load, write_output
from bot.logs import say

if TYPE_CHECKING:
    # asyncio and the config models are loaded by the command when it runs, not by every
    # `newswatch` command.
    from watchers.config import Config
    from watchers.surge import Trend

__all__ = ["add_parser", "run"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
MIN_PERIOD, MAX_PERIOD = timedelta(hours=1), timedelta(days=90)  # as /trend allows


def add_parser(subparsers: Any) -> None:
    """Add the ``trend`` subcommand to ``newswatch``'s subparsers."""
    sp = subparsers.add_parser(
        "trend", help="a rule's or a query's matches over time, as a table or a PNG chart",
        description="Count the stored articles a rule (by name) or a query matched, per hour "
                    "(periods up to 3d) or per day, by publication time in UTC, with each "
                    "bucket's usual range (mean ± std of its baseline) and the surges. Reads "
                    "the database without locking it.")
    sp.add_argument("what", metavar="QUERY_OR_RULE")
    config_arg(sp)
    sp.add_argument("--since", metavar="DURATION", default="7d",
                    help="how far back from the end, 1h to 90d (default 7d)")
    sp.add_argument("--until", metavar="DATE",
                    help="end of the period, ISO 8601 (UTC without an offset; default now)")
    sp.add_argument("--png", metavar="FILE", help="write the chart to FILE instead of a table")
    sp.set_defaults(func=run)


def _period(value: str) -> timedelta:
    from watchers.config import format_duration, parse_duration

    try:
        period = parse_duration(value)
    except ValueError as exc:
        raise _Usage(f"--since: {exc}; use {format_duration(MIN_PERIOD)} to "
                     f"{format_duration(MAX_PERIOD)}") from None
    if not MIN_PERIOD <= period <= MAX_PERIOD:
        raise _Usage(f"--since: {format_duration(period)} is out of range; use "
                     f"{format_duration(MIN_PERIOD)} to {format_duration(MAX_PERIOD)}")
    return period


def _until(value: str | None) -> datetime:
    if not value:
        return datetime.now(UTC)
    from watchers.models import impossible_offset, parse_iso

    try:
        when = parse_iso(value.strip())  # as import, stories and the feeds read a date
    except ValueError:
        zone = impossible_offset(value)
        if zone is not None:
            raise _Usage(f"--until: {value!r} has UTC offset {zone}, which no time zone "
                         "has (they run from -12:00 to +14:00)") from None
        raise _Usage(f"--until: {value!r} is not an ISO 8601 date (e.g. 2022-03-01 or "
                     "2022-03-01T12:00)") from None
    # The chart reaches back a period and its baseline before --until, and a bucket after it:
    # dates near the calendar's ends would overflow there.
    try:
        inside = _EARLIEST <= when <= _LATEST
    except OverflowError:
        inside = False
    if not inside:
        raise _Usage(f"--until: {value.strip()[:40]!r} is out of range; use a date from "
                     f"{_EARLIEST.year} to {_LATEST.year}")
    return when


_EARLIEST = datetime(1000, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)


class _Usage(ValueError):
    pass


async def _trend(cfg: Config, what: str, since: timedelta, until: datetime) -> Trend:
    from watchers.errors import NewswatchError
    from watchers.rules.text import KEYS_VERSION
    from watchers.store import open_store, store_exists
    from watchers.trends import trend_of

    path = cfg.storage.target(cfg.resolve)
    if not store_exists(path):
        raise NewswatchError(f"no database at {path} yet: run `newswatch run` or "
                             "`newswatch import` first")
    async with await open_store(path, readonly=True) as store:
        # Rules by key, as the engine knows them without a server (a server's rule is
        # "<guild>:<name>"; a config rule's key is its name).
        rules = {r.key for r in cfg.rules} | {r.key for r in await store.list_rules()}
    # A rule's trend reads its stored match times; a query's reads the lookup indexes, which
    # must hold the engine's word keys (after an upgrade, until a writer rebuilt them, it
    # counted too few matches and said nothing), as search refuses them.
    query = what not in rules and sum(r.casefold() == what.casefold() for r in rules) != 1
    async with await open_store(path, readonly=True,
                                keys_version=KEYS_VERSION if query else None) as store:
        return await trend_of(store, what, rules=rules, since=since, until=until,
                              surge=cfg.surge, threshold=cfg.threshold, aliases=cfg.aliases)


def _table(result: Trend) -> str:
    from watchers.models import day_text, minute_text

    daily = result.bucket >= timedelta(days=1)
    spell = day_text if daily else minute_text
    width = 10 if daily else 16
    label = result.label if len(result.label) <= 200 else result.label[:199] + "…"
    lines = [f"{label}: matches per {'day' if daily else 'hour'} (UTC); "
             "usual = mean ± std of the baseline",
             f"{'bucket':<{width}}  {'count':>6}  {'usual':>13}  surge"]
    for p in result.points:
        band = f"{p.mean:5.1f} ± {p.std:5.1f}"
        lines.append(f"{spell(p.start.astimezone(UTC)):<{width}}  {p.count:>6}  "
                     f"{band:>13}  {'SURGE' if p.surge else ''}".rstrip())
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Exit code: 0; 2 for a bad option or query (the query's column on stderr); 1 for a
    missing database or an unusable config."""
    from bot.charts import render_trend, summary

    try:
        since = _period(args.since)
        until = _until(args.until)
    except _Usage as exc:
        say(str(exc))
        return EXIT_USAGE
    what = args.what.strip()
    if not what:
        say("QUERY_OR_RULE: give a rule's name or a query")
        return EXIT_USAGE
    import asyncio

    cfg = load(args.config)
    result = asyncio.run(_trend(cfg, what, since, until))
    if args.png is not None:  # --png "" is a mistake to name, not a request for the table
        if not args.png.strip():
            say("--png: expected a file name, got an empty one")
            return EXIT_USAGE
        out = Path(args.png)
        refused = write_output(out, render_trend(result), what="PNG image",
                               looks_like=lambda head: head.startswith(b"\x89PNG\r\n\x1a\n"),
                               cfg=cfg, config_file=config_path(args.config))
        if refused is not None:
            say(f"--png: {refused}")
            return EXIT_FAILED if isinstance(refused, WriteFailed) else EXIT_USAGE
        say(f"wrote {out}: {summary(result)}")
    else:
        sys.stdout.write(_table(result) + "\n")
        say(summary(result))
    return EXIT_OK
