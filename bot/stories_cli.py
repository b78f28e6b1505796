"""``newswatch stories FILE.jsonl [--window 48h] [--json]``: group articles into stories offline.

Reads JSON lines (``id``, ``title``, ``date`` required; ``text``, ``url``, ``source`` optional
strings), clusters them with :func:`watchers.stories.cluster` and prints the stories. The whole
file is checked before anything is printed: any bad line is named on stderr with its number and
field, and nothing goes to stdout (exit 2). With ``--json`` every input id appears in exactly one
output line ``{"story": ID, "ids": [...]}``, stories of one article included.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli_config import not_a_file
from bot.logs import json_line, say, shown

if TYPE_CHECKING:
    # The clustering code and the config models are loaded by the command itself, not by
    # every command (nor by `newswatch --help`).
    from watchers.stories import Story, StoryInput

__all__ = ["add_parser", "run"]

EXIT_OK, EXIT_USAGE = 0, 2
# Seconds between progress lines when stderr is not a terminal (a log, a CI job).
_PROGRESS_SECONDS = 10.0
# Enough to see what is wrong with a file without flooding the terminal.
_MAX_REPORTED = 20


class _Bad(ValueError):
    pass


def add_parser(subparsers: Any) -> None:
    """Add the ``stories`` subcommand to ``newswatch``'s subparsers."""
    sp = subparsers.add_parser(
        "stories", help="group a JSON Lines file of articles into stories (offline)",
        description="Read articles from FILE, one JSON object per line with id, title, date "
                    "(ISO 8601; without an offset it is UTC) and optionally text, url and "
                    "source, and group them into stories: the same event reported by several "
                    "outlets or re-posted. Articles are taken in date order; an article joins "
                    "a story only within WINDOW of it. Any bad line is named with its number "
                    "and nothing is printed (exit status 2).")
    sp.add_argument("file", metavar="FILE")
    # No default here: without --window the command takes [stories] window's default.
    sp.add_argument("--window", metavar="DURATION",
                    help="how far apart articles of one story may be (default 48h)")
    sp.add_argument("--json", action="store_true",
                    help='one {"story": ID, "ids": [...]} per line, every input id once')
    sp.set_defaults(func=run)


def _string(doc: dict[str, Any], field: str, *, required: bool) -> str | None:
    value = doc.get(field)
    if value is None or (required and value == ""):
        if required:
            raise _Bad(f"missing '{field}'" if value is None else f"'{field}' is empty")
        return None
    if not isinstance(value, str):
        from watchers.models import json_kind

        raise _Bad(f"'{field}' must be a string, not {json_kind(value)}")
    if required and not value.strip():
        raise _Bad(f"'{field}' must not be blank")
    from watchers.models import shows_nothing, storable, unstorable_id

    if required and shows_nothing(value):
        # A zero-width space, a soft hyphen or a direction mark alone: a blank headline.
        raise _Bad(f"'{field}' holds only invisible characters")

    if field == "id" and (why := unstorable_id(value)) is not None:
        # Made printable, "a\ud800" and "a\udc00" were one id, and the file was refused
        # for a repeat it does not hold.
        raise _Bad(f"{why}, which --json could not print back as given")
    return storable(value)  # a lone surrogate ("\ud800") would fail when printed


def _parse(raw: str, now: datetime) -> StoryInput | None:
    if not raw.strip():
        return None
    from watchers.importer import LINE_OBJECTS, repeated_field
    from watchers.models import believed, loads_json

    try:
        doc = loads_json(raw, LINE_OBJECTS)
    except json.JSONDecodeError as exc:
        from watchers.importer import json_problem

        raise _Bad(json_problem(exc)) from None
    except RecursionError:
        raise _Bad("invalid JSON: nested too deeply") from None
    if not isinstance(doc, dict):
        from watchers.models import json_kind

        raise _Bad(f"expected a JSON object, got {json_kind(doc)}")
    if (twice := repeated_field(doc)) is not None:
        # a repeated "id" was taken silently (the last one), and the first id was then in
        # no story; a key of an object inside the line may repeat, as for `newswatch import`
        raise _Bad(f"{twice!r} appears twice in the object")
    ident = _string(doc, "id", required=True)
    title = _string(doc, "title", required=True)
    date_raw = _string(doc, "date", required=True)
    assert ident is not None and title is not None and date_raw is not None
    from watchers.importer import BadLine, line_date

    try:
        # As `newswatch import` reads it; one past either end of time in UTC
        # (0001-01-01T00:00:00+14:00) is a bad line there too.
        utc = line_date(date_raw)
    except BadLine as exc:
        raise _Bad(str(exc)) from None
    # As `newswatch import` takes it: a date more than a day ahead of now (a 9999-12-31
    # placeholder) is not believed, and the line counts at the time it is read.
    date = believed(utc, now) or now
    from watchers.stories import StoryInput

    return StoryInput(
        # the id as given: --json prints every input id back, exactly
        id=ident, title=title.strip(), text=_string(doc, "text", required=False) or "",
        url=_string(doc, "url", required=False),
        date=date, source=(_string(doc, "source", required=False) or "").strip())


def _read(path: Path) -> tuple[list[StoryInput], list[str]]:
    """The file's articles and its bad lines, named; NewswatchError for a file that is not
    JSON Lines at all (compressed, UTF-16, a database)."""
    items: list[StoryInput] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    now = datetime.now(UTC)
    from watchers.errors import NewswatchError
    from watchers.importer import MAX_LINE_BYTES, json_lines, not_json_lines

    with path.open("rb") as fh:
        if (why := not_json_lines(fh.read(16))) is not None:
            raise NewswatchError(f"{path} {why}")
        fh.seek(0)
        # Lines as the import reads them: without a byte order mark, and one longer than its
        # cap (a file with no line breaks) measured and passed over rather than held whole.
        for number, _, line in json_lines(fh):
            try:
                if isinstance(line, int):
                    raise _Bad(f"longer than {MAX_LINE_BYTES // 2**20} MiB ({line:,} bytes)")
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise _Bad(f"not UTF-8 (byte {exc.start + 1})") from None
                item = _parse(text, now)
                if item is None:
                    continue
                if item.id in seen:
                    raise _Bad(f"'id' {item.id!r} repeats line {seen[item.id]}")
            except _Bad as exc:
                problems.append(f"{path}:{number}: {exc}")
                continue
            seen[item.id] = number
            items.append(item)
    return items, problems


def _when(d: datetime) -> str:
    from watchers.models import minute_text

    return minute_text(d.astimezone(UTC))


def _listing(stories: list[Story], by_id: dict[str, StoryInput]) -> str:
    multi = sum(1 for s in stories if len(s.ids) > 1)
    lines = [f"{len(stories)} {'story' if len(stories) == 1 else 'stories'} from "
             f"{len(by_id)} article{'' if len(by_id) == 1 else 's'} "
             f"({multi} reported more than once); times in UTC", ""]
    for s in sorted(stories, key=lambda s: (s.first, s.id)):
        n = len(s.ids)
        outlets = shown(", ".join(s.outlets)) or "no source"
        span = _when(s.first) if s.first == s.last else f"{_when(s.first)} → {_when(s.last)}"
        lines.append(shown(s.headline))
        lines.append(f"  {n} article{'s' if n != 1 else ''} · {len(s.outlets)} "
                     f"outlet{'s' if len(s.outlets) != 1 else ''} ({outlets}) · {span} · {s.id}")
        if n > 1:
            for i in s.ids:
                it = by_id[i]
                lines.append(f"    {_when(it.date)}  {shown(it.source or '-')}: {shown(it.title)}")
        lines.append("")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Exit code: 0, or 2 for a bad window, a missing file or any bad line."""
    from watchers.config import StoriesConfig, parse_duration

    try:
        window = (StoriesConfig().window if args.window is None
                  else parse_duration(args.window))
    except ValueError as exc:
        say(f"--window: {exc}")
        return EXIT_USAGE
    path = Path(args.file)
    if not path.is_file():
        say(not_a_file(path))
        return EXIT_USAGE
    from bot.progress import ProgressBar
    from watchers.errors import NewswatchError

    # A year of history takes a while (160,000 lines: about 12 s): said as it goes, on stderr.
    bar = ProgressBar("stories")
    bar.begin(f"reading {shown(str(path))}")
    try:
        items, problems = _read(path)
    except OSError as exc:
        bar.clear()
        say(f"{path}: {exc.strerror or exc}")
        return EXIT_USAGE
    except NewswatchError as exc:
        bar.clear()
        say(str(exc))
        return EXIT_USAGE
    bar.clear()  # (the counts' bar takes its place)
    if problems:
        for p in problems[:_MAX_REPORTED]:
            print(shown(p), file=sys.stderr)  # a file name may hold a line break
        if len(problems) > _MAX_REPORTED:
            print(f"… and {len(problems) - _MAX_REPORTED} more bad lines", file=sys.stderr)
        say(f"{path}: {len(problems)} bad line{'s' if len(problems) != 1 else ''}; "
            "nothing clustered")
        return EXIT_USAGE
    from watchers.stories import cluster

    def progress(done: int, total: int) -> None:
        bar.update(done / total, f"{done:,} of {total:,} articles placed in stories",
                   finished=done == total, every=_PROGRESS_SECONDS)

    # As `newswatch import` places them: in the order of their dates, one dated ahead of
    # now (within the day believed) placed at now, the time it was read (it was placed at its
    # own date, and two reports 60 hours apart as dated were one story in the import and two
    # here).
    now = datetime.now(UTC)
    items = [it if it.date <= now else dataclasses.replace(it, date=now)
             for it in sorted(items, key=lambda it: it.date)]
    stories = cluster(items, window, on_progress=progress)
    bar.done()
    out = sys.stdout
    if args.json:
        for s in stories:
            out.write(json_line({"story": s.id, "ids": s.ids}) + "\n")
    else:
        out.write(_listing(stories, {it.id: it for it in items}) + "\n")
    out.flush()
    return EXIT_OK
