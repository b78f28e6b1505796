"""Watched folders: articles from .txt, .md and .json files in a local folder.

What a folder source reads, and why (a file left out is described once per file version in
``Poll.skipped``, which the service logs with the source's name and counts in its health):

- Only regular files whose real path stays inside the folder. A symlink to a file inside is read;
  one that leads outside (``env.txt -> /proc/self/environ``), a FIFO or a device is not. The file
  is opened by its resolved path and the opened file must be the inode that was checked, so
  swapping a link between the check and the read does not get around it.
- At most ``max_file_size`` bytes (default 1 MiB): a larger file is skipped on its size alone
  and never read into memory.
- Text only: a NUL byte in the first 8 KiB (without a UTF-16 byte order mark), or control bytes
  other than tab, newline, form feed and carriage return making up more than 10% of them, make a
  file binary. Text is UTF-8 (or UTF-16 with a BOM), its bytes that are not UTF-8 read as
  Windows-1252 reads them (Latin-1 where it defines none): legacy files are text too, and a
  UTF-8 file with a stray legacy byte keeps its UTF-8 text.
- Only files that have stopped changing. A file last modified more than ``settle`` (+2 s for
  filesystems with coarse timestamps) ago is stable; a fresher one is looked at twice, ``settle``
  apart (default 1 s), and read only if its size and modification time did not change. A file
  still being written is left for the next poll, so it alerts once, with its whole content, and a
  file dropped in one go alerts within the folder's interval plus ``settle``.
- At most ``POLL_BYTES`` (16 MiB) of files a poll, the oldest first (and one file at least,
  whatever its size): a poll's articles are held until they are written. The cursor keeps what it
  knew of the files left over (or nothing), so the next poll reads them; none is skipped or
  named for it. Such a poll says it left ``more``, and the service polls again at once.
- Names that are not UTF-8 cannot be stored or shown, so those files are skipped.
- Hidden files and folders (a name starting with ``.``) are ignored; symlinked folders are not
  followed.

The cursor maps each file's path (relative, ``/``-separated) to its version,
``mtime_ns:size:inode:ctime_ns``, or to ``skip:…`` for a version that was skipped, so a poll
reads only what changed (a file replaced by another of the same size and time included).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import stat
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from watchers.errors import SourceError
from watchers.models import Article, derive_id, json_kind, loads_json, parse_iso
from watchers.sources.base import (
    LEGACY_BYTES,
    Duration,
    Poll,
    Source,
    SourceConfigBase,
    SourceContext,
    printable,
)

__all__ = [
    "DEFAULT_MAX_FILE_SIZE",
    "POLL_BYTES",
    "SUFFIXES",
    "FolderSource",
    "FolderSourceConfig",
    "build",
    "decode_text",
    "describe",
    "parse_size",
    "read_article_file",
    "split_text_article",
]

SUFFIXES = (".txt", ".md", ".json")
TITLE_LIMIT = 160
DEFAULT_MAX_FILE_SIZE = 1024 * 1024
DEFAULT_SETTLE = timedelta(seconds=1)
# The longest settle a folder may have: a file still being written over a slow share is
# looked at again after this long at most.
MAX_SETTLE = timedelta(minutes=10)
# The most bytes of files (their sizes when listed) one poll reads; at least one file is read
# whatever its size. The service holds every article of a poll, and its analysis (up to 20
# times the text), until the poll is written: 300 new files of 1 MB took 4.3 GB in one poll,
# 2,000 would have taken 28 GB; 16 MiB of them take about 480 MB. The files left over are
# read by the next polls, oldest first.
POLL_BYTES = 16 * 2**20
# What a file counts against that budget at least: each article costs kilobytes to hold (its
# model, analysis, record), whatever its size; 150,000 files of 22 bytes (3.3 MB) were one
# poll of 1.1 GB. At 8 KB a file, a poll reads 2,048 small files at most.
MIN_FILE_CHARGE = 8 * 2**10
log = logging.getLogger(__name__)
_MAX_SIZE_LIMIT = 1024**3  # a larger cap would let one file take the memory the cap protects
_SNIFF = 8192
_COARSE_MTIME_NS = 2 * 10**9  # FAT stores modification times to 2 s
# ``date 2024-03-01``, optionally with a time of day (``T18:45``, `` 18:45:00Z``, an offset):
# a time has a colon, so a number after the date ("date 2024-03-01 300 troops ...") is text.
_DATE_PREFIX = re.compile(
    r"^\s*date\s+(\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
    r"(?:Z|[+-]\d{2}(?::?\d{2})?)?)?)\s+", re.IGNORECASE)
# A sentence ends at . ! ? (optionally followed by a closing quote) before whitespace.
_SENTENCE_END = re.compile(r"[.!?][\"'”’)]?(?=\s|$)")
# ASCII digits only: \d takes any script's ("１MiB" read as 1 MiB), which no config means.
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmg]i?b|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3,
}  # fmt: skip
_ZERO = re.compile(r"^\s*0+(?:\.0*)?\s*(?:ms|s|m|h|d|w)?\s*$", re.IGNORECASE)
_CONTROL_BYTES = frozenset(range(0x20)) - {0x09, 0x0A, 0x0C, 0x0D} | {0x7F}
# The same bytes for bytes.translate, which drops them in C: a file's head is binary when
# they are more than a tenth of it (counted byte by byte in Python, 27 µs of a 600-byte file's
# 70 µs read).
_CONTROL_TABLE = bytes(sorted(_CONTROL_BYTES))


def parse_size(value: str | int) -> int:
    """Bytes from ``1048576``, ``"512KB"``, ``"1MB"`` (powers of 1000) or ``"1MiB"`` (of 1024)."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 1048576, '512KB' or '1MiB'")
    if isinstance(value, int):
        size = value
    else:
        m = _SIZE.match(value)
        if not m:
            raise ValueError(
                f"{value!r} is not a size; use bytes (1048576) or e.g. '512KB', '1MB', '1MiB'"
            )
        size = int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()])
    if not 0 < size <= _MAX_SIZE_LIMIT:
        raise ValueError(f"a size limit must be between 1 byte and 1GiB, not {size} bytes")
    return size


def config_size(value: Any, example: str) -> int:
    """A size setting's value as a config file gives it (bytes or a string with its unit, see
    :func:`parse_size`); anything else is refused naming ``example`` ("1048576, '512KB' or
    '1MiB'")."""
    if not isinstance(value, str | int):
        raise ValueError(f"expected a size such as {example}")
    return parse_size(value)


# The shortest `every` of a folder: a look at a folder of a few files takes about a
# millisecond; every = "1ms" kept a core busy.
MIN_LOOK = timedelta(seconds=0.1)


class FolderSourceConfig(SourceConfigBase):
    """``[[sources]] type = "folder"``: ``path`` (relative to the config file), ``every``
    (default 30s), ``max_file_size`` (bytes or '1MiB'-style, default 1 MiB, at most 1 GiB) and
    ``settle`` (how long a fresh file must stay unchanged before it is read: default 1s, "0s"
    reads at once; a poll that finds a fresh file takes this much longer).
    """

    type: Literal["folder"]
    path: str = Field(min_length=1)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        from watchers.config import usable_path

        return usable_path(value)
    every: Duration = Field(default=timedelta(seconds=30), strict=False)
    # bytes, or a string such as "512KB" (see parse_size)
    max_file_size: int = Field(default=DEFAULT_MAX_FILE_SIZE, strict=False)
    settle: Duration = Field(default=DEFAULT_SETTLE, strict=False)

    @field_validator("settle", mode="before")
    @classmethod
    def _no_settle(cls, value: Any) -> Any:
        # 0 turns the second look off (files are written elsewhere and moved in whole); any
        # other value is a duration like every other.
        if (isinstance(value, int | float) and not isinstance(value, bool) and value == 0) or (
            isinstance(value, str) and _ZERO.match(value)
        ):
            return timedelta(0)
        return value

    @field_validator("settle")
    @classmethod
    def _settle_bound(cls, value: timedelta) -> timedelta:
        # A poll that finds a file changed within settle waits that long to look again:
        # "3650d" passed `check`, and `run --once` waited in silence with every file fresh.
        if value > MAX_SETTLE:
            from watchers.config import format_duration

            raise ValueError(f"is at most {format_duration(MAX_SETTLE)} (a poll that finds a "
                             "file changed that recently waits this long before reading it)")
        return value

    @field_validator("max_file_size", mode="before")
    @classmethod
    def _size(cls, value: Any) -> int:
        return config_size(value, "1048576, '512KB' or '1MiB'")


def build(config: FolderSourceConfig, ctx: SourceContext) -> Source:
    """The source a folder entry of the config describes."""
    return FolderSource(
        config.name,
        ctx.resolve(config.path),
        max_file_size=config.max_file_size,
        settle=config.settle,
    )


def describe(config: FolderSourceConfig) -> str:
    """Where the source reads: its folder, as the config gives it."""
    return config.path


# ---------------------------------------------------------------------------------------------
# One article file


def _cut(text: str, limit: int = TITLE_LIMIT) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit].rstrip(" ,;:-") + "…"


def split_text_article(raw: str) -> tuple[str, str, datetime | None]:
    """Apply the seeds convention to plain text: return (title, text, published).

    A leading ``date YYYY-MM-DD`` token (optionally with a time: ``date 2024-03-01T18:45Z``) is
    the publication date and not part of the text. A short
    first line without final punctuation is the title (and leaves the text); otherwise the title
    is the first sentence, cut at a word boundary, and the text keeps it.
    """
    published = None
    m = _DATE_PREFIX.match(raw)
    if m:
        try:
            published = parse_iso(m.group(1).upper())
            raw = raw[m.end() :]
        except ValueError:  # not a day there is (2024-02-30): the token stays in the text
            pass
    raw = raw.strip()
    first, _, rest = raw.partition("\n")
    first = first.strip()
    if first and len(first) <= TITLE_LIMIT and not re.search(r"[.!?:;,]$", first) and rest.strip():
        return first.lstrip("# ").strip(), rest.strip(), published
    end = _SENTENCE_END.search(raw)
    sentence = raw[: end.end()] if end else first
    return _cut(sentence), raw, published


def _parse_date(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return parse_iso(value.strip())
    except ValueError:
        return None


def decode_text(data: bytes) -> str | None:
    """The text of a file's bytes, or None if they look binary (see the module docstring)."""
    head = data[:_SNIFF]
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        # UTF-32's marks (the little-endian one starts as UTF-16's: the file was read as
        # UTF-16, a NUL between letters, and no rule matched it)
        try:
            return data.decode("utf-32")
        except UnicodeDecodeError:
            return None
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    if head and (len(head) - len(head.translate(None, _CONTROL_TABLE))) * 10 > len(head):
        return None
    # Each byte that is not UTF-8 read as Windows-1252 reads it, not the whole file: one such
    # byte made every Cyrillic letter and curly quote of a UTF-8 file mojibake.
    return data.decode("utf-8-sig", errors=LEGACY_BYTES)


def _json_string(doc: dict[str, Any], *keys: str) -> str:
    """The first of ``keys`` that ``doc`` holds a value for (not null or empty), which must be
    a string: a list or an object was stored as Python spells it ("['Troops']"), as the
    article's title, and matched as such (the import refuses the same line)."""
    for key in keys:
        value = doc.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise SourceError(f"'{key}' must be a string, not {json_kind(value)}")
        return value
    return ""


def _article_from_bytes(data: bytes, name: str, *, source: str, guid: str | None) -> Article:
    """An Article from a file's content; raises SourceError (without the name) if unusable."""
    raw = decode_text(data)
    if raw is None:
        raise SourceError("binary, not text")
    url = None
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    if suffix.lower() == "json":
        try:
            doc = loads_json(raw)
        except json.JSONDecodeError as exc:
            raise SourceError(f"invalid JSON at line {exc.lineno}: {exc.msg}") from None
        except RecursionError:
            raise SourceError("invalid JSON: nested too deeply") from None
        if not isinstance(doc, dict):
            raise SourceError("expected a JSON object with 'title' and 'text'")
        text = _json_string(doc, "text", "content", "body")
        title = _json_string(doc, "title").strip()
        published = _parse_date(doc.get("published") or doc.get("date"))
        if not title:
            title, text, fallback = split_text_article(text)
            published = published or fallback
        u = doc.get("url") or doc.get("link")
        url = u if isinstance(u, str) and re.match(r"(?i)^https?://", u) else None
    else:
        title, text, published = split_text_article(raw)
    if not title and not text:
        raise SourceError("empty article")
    return Article(
        source=source,
        guid=guid,
        url=url,
        title=title or stem,
        text=text,
        published=published,
        fetched_at=datetime.now(UTC),
    )


def read_fd(fd: int, size: int, most: int | None = None) -> bytes:
    """The bytes of an open regular file from where it stands to its end, or its first
    ``most`` if it holds more. ``size``: what the file said it holds (fstat); the first call
    asks for that and a byte more, and a file that grew since is read on. A file object's
    ``read(most)`` set aside ``most`` bytes first: 1 MiB for every file of a folder, which
    made reading a small file four times as slow."""
    chunks = []
    left = most
    while left is None or left > 0:
        want = max(size + 1, 1 << 16)
        got = os.read(fd, want if left is None else min(left, want))
        if not got:
            break
        chunks.append(got)
        if left is not None:
            left -= len(got)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read_article_file(path: Path, *, source: str = "", guid: str | None = None,
                      max_bytes: int | None = None) -> Article:
    """Read one .txt, .md or .json article file the caller chose (symlinks followed; no size
    cap unless ``max_bytes``). Raises SourceError naming the file if it is unreadable, not a
    regular file (a FIFO, a device), larger than ``max_bytes``, binary or empty (a file of
    /proc that says it holds 0 bytes is taken at its word and never read)."""
    try:
        # Opened without waiting: a FIFO, or a file of /proc that blocks its reader until the
        # kernel writes (/proc/kmsg), is refused below rather than waited on for ever.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise SourceError(f"{path}: not a regular file")
            if info.st_size == 0:
                # Empty; or a system file (procfs, sysfs) that says it is and is no article.
                raise SourceError(f"{path}: empty article (0 bytes)")
            data = read_fd(fd, info.st_size, None if max_bytes is None else max_bytes + 1)
        finally:
            os.close(fd)
    except OSError as exc:
        raise SourceError(f"{path}: cannot read ({exc.strerror})") from None
    if max_bytes is not None and len(data) > max_bytes:
        raise SourceError(f"{path}: larger than {max_bytes // 2**20} MiB")
    try:
        return _article_from_bytes(data, path.name, source=source, guid=guid)
    except SourceError as exc:
        raise SourceError(f"{path}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# The folder


class _Skip(Exception):
    """This file version is left out; ``remember`` says whether to wait for it to change, and
    ``unreadable`` whether to wait for it or its permissions to change."""

    def __init__(self, reason: str, *, remember: bool = True, unreadable: bool = False
                 ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.remember = remember
        self.unreadable = unreadable


@dataclass(frozen=True)
class _Candidate:
    key: str  # path relative to the folder, "/"-separated
    real: str  # resolved path, inside the folder
    stamp: str  # the real file's version (see _version)
    dev_ino: tuple[int, int]
    mtime_ns: int
    size: int
    ctime_ns: int = 0  # changes with permissions too: what an unreadable file is kept by


def _within_budget(candidates: list[_Candidate], budget: int
                   ) -> tuple[list[_Candidate], list[_Candidate]]:
    """``candidates`` split into those to read now, whose sizes (each at least
    :data:`MIN_FILE_CHARGE`) add up to ``budget`` bytes at most (the first always, however
    large), and those left for a later poll. The oldest
    (by modification time) are taken first, so files that keep coming cannot hold back one
    whose name sorts last; each part keeps the order of ``candidates``."""
    charge = MIN_FILE_CHARGE  # (a file counts this much at least: see there)
    if sum(max(c.size, charge) for c in candidates) <= budget:
        return candidates, []
    taken: set[str] = set()
    total = 0
    for c in sorted(candidates, key=lambda c: c.mtime_ns):  # stable: ties in listing order
        cost = max(c.size, charge)
        if taken and total + cost > budget:
            break  # not a smaller file after it: the oldest come first
        taken.add(c.key)
        total += cost
    return ([c for c in candidates if c.key in taken],
            [c for c in candidates if c.key not in taken])


def _stamp(st: os.stat_result) -> str:
    return f"{st.st_mtime_ns}:{st.st_size}"


def _version(st: os.stat_result) -> str:
    """A file's version as the cursor keeps it: its modification time and size, and its inode
    and change time. A file replaced by another of the same size and modification time (``mv``
    of a copy made with ``cp -p``, ``touch -r``, an unpacked archive) was never read again:
    the new file has another inode, a file rewritten in place a new change time (which no
    program sets back)."""
    return f"{st.st_mtime_ns}:{st.st_size}:{st.st_ino}:{st.st_ctime_ns}"


def _inside(root: str, real: str) -> bool:
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _opened_inside(fd: int, root: str, path: str, st: os.stat_result) -> bool:
    """Whether the file open as ``fd`` (opened at ``path``, ``st`` its fstat) is inside the
    folder whose real path is ``root``. The kernel's path of the open file says so at once.
    Where it gives none, or one outside (a case-insensitive file system may name a folder as
    it is on disk, whatever case the config gave), the path resolved again must lead inside
    and to this very file."""
    where = _opened_path(fd)
    if where is not None and _inside(root, where):
        return True
    real = os.path.realpath(path)
    if not _inside(root, real):
        return False
    try:
        again = os.stat(real)
    except OSError:
        return False
    return (again.st_dev, again.st_ino) == (st.st_dev, st.st_ino)


def _opened_path(fd: int) -> str | None:
    """The path of an open file as the kernel gives it (Linux's /proc: links on the way
    resolved, whatever happened to the path since it was opened); None where it gives none."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


@dataclass
class _Scan:
    candidates: list[_Candidate]
    cursor: dict[str, str]  # files already settled (unchanged or remembered as skipped)
    skipped: list[str]
    root: str  # the folder's real path, which every file read must be inside

    def skip(self, cursor: Mapping[str, str], key: str, seen: str, why: str) -> None:
        """Leave out the entry the cursor knows as ``key``, in the state ``seen``: named (as
        ``why``) only when that state is new, so each version is named once, not every poll."""
        if cursor.get(key) != seen:
            self.skipped.append(why)
        self.cursor[key] = seen


class FolderSource:
    """Polls a folder for new and changed article files (recursive; hidden entries ignored).

    A changed file is a new version of the article: its guid includes the content fingerprint.
    ``sleep`` waits between the two looks at a fresh file (a seam for tests that change a file
    during that wait).
    """

    def __init__(
        self,
        name: str,
        path: Path,
        *,
        max_file_size: int = DEFAULT_MAX_FILE_SIZE,
        settle: timedelta = DEFAULT_SETTLE,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.name = name
        self.path = path
        self.max_file_size = max_file_size
        self.settle = settle
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"FolderSource(name={self.name!r}, path={str(self.path)!r})"

    async def poll(self, cursor: Mapping[str, str]) -> Poll:
        previous = dict(cursor)
        started_ns = time.time_ns()
        scan = await asyncio.to_thread(self._scan, previous)
        settle_ns = int(self.settle.total_seconds() * 10**9)
        fresh = [c for c in scan.candidates
                 if c.mtime_ns > started_ns - settle_ns - _COARSE_MTIME_NS]
        changing: set[str] = set()
        if fresh and settle_ns > 0:
            await self._sleep(self.settle.total_seconds())
            changing = await asyncio.to_thread(self._changed, fresh)
        stable = [c for c in scan.candidates if c.key not in changing]
        stable, later = _within_budget(stable, POLL_BYTES)
        if later:
            # (said: `run --once` and `check --live` read fewer than the folder holds)
            log.info("source %s: %d new file(s) of %s MB left for its next poll, at once (a "
                     "poll reads %d MiB of files at most, the oldest first)", printable(self.name),
                     len(later), f"{sum(c.size for c in later) / 2**20:,.1f}",
                     POLL_BYTES // 2**20)
        for key in (*changing, *(c.key for c in later)):
            if key in previous:  # still differs from the file, so it is looked at again
                scan.cursor[key] = previous[key]
        articles = await asyncio.to_thread(self._read_all, stable, scan)
        return Poll(articles=articles, cursor=scan.cursor, skipped=tuple(scan.skipped),
                    more=bool(later))

    async def aclose(self) -> None:
        return None

    # -- blocking parts, run in a thread

    def _scan(self, cursor: Mapping[str, str]) -> _Scan:
        if not self.path.is_dir():
            raise SourceError(f"folder {self.path} does not exist or is not a folder")
        root = os.path.realpath(self.path)
        scan = _Scan([], {}, [], root)
        walk_errors: list[OSError] = []
        for top, dirs, files in os.walk(root, onerror=walk_errors.append):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            real_top: str | None = None
            for file in sorted(files):
                if file.startswith(".") or not file.lower().endswith(SUFFIXES):
                    continue
                if real_top is None:
                    # Once a folder, not for each of its files (a path's every part read
                    # again): os.walk enters no link, so this is the folder's own path, unless
                    # a link took its place meanwhile. A swap later on is caught as a file is
                    # read (see _read).
                    real_top = os.path.realpath(top)
                self._look(root, real_top, os.path.join(top, file), cursor, scan)
        for err in walk_errors:
            if err.filename and os.path.realpath(err.filename) == root:
                # The watched folder itself cannot be listed: the source fails (it counted as
                # a good poll of nothing, never backing off, pausing or saying so).
                raise SourceError(f"cannot list folder {self.path}: {err.strerror}")
            where = os.path.relpath(err.filename, root) if err.filename else "?"
            # Named once for as long as it stays so, like a file left out (it was named at
            # every poll).
            scan.skip(cursor, "/unlisted:" + where, f"skip:{err.errno}",
                      f"folder {_show(where)}: cannot list ({err.strerror})")
        return scan

    def _look(self, root: str, real_top: str, path: str, cursor: Mapping[str, str],
              scan: _Scan) -> None:
        # The path below the root: os.walk joined it to the root as given.
        key = path[len(root.rstrip(os.sep)) + 1 :]
        if os.sep != "/":
            key = key.replace(os.sep, "/")
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            # Named once per version of the file, like any file left out (the cursor keeps
            # text: the name's bytes, in hex, stand for it).
            token = "/undecodable:" + os.fsencode(key).hex()  # no relative path starts so
            try:
                seen = f"skip:{_stamp(os.lstat(path))}"
            except OSError:
                return
            scan.skip(cursor, token, seen, f"file {_show(key)}: name is not UTF-8")
            return
        try:
            link = os.lstat(path)
        except FileNotFoundError:
            return  # gone since the listing
        except OSError as exc:
            # Its path longer than the system can name (a file deep in a folder that could
            # still be listed): taken for one gone since the listing, it was never named.
            scan.skip(cursor, key, f"skip:e{exc.errno}",
                      f"file {_show(key)}: cannot read ({exc.strerror})")
            return
        try:
            if stat.S_ISLNK(link.st_mode):
                real = os.path.realpath(path)
            else:  # no link itself: it is where its folder really is
                real = os.path.join(real_top, os.path.basename(path))
            if not _inside(root, real):
                raise _Skip(f"links outside the folder (to {_show(real)})")
            # No link on the way (the real path is the path): the file is what lstat saw.
            st = link if real == path and stat.S_ISREG(link.st_mode) else os.stat(real)
            if not stat.S_ISREG(st.st_mode):
                raise _Skip("not a regular file")
            if st.st_size > self.max_file_size:
                raise _Skip(f"{st.st_size} bytes, over the limit of {self.max_file_size}")
        except _Skip as skip:
            scan.skip(cursor, key, f"skip:{_stamp(link)}", f"file {_show(key)}: {skip.reason}")
            return
        except OSError as exc:
            # A dangling link, a loop of links: named once per version of the link.
            scan.skip(cursor, key, f"skip:{_stamp(link)}:e{exc.errno}",
                      f"file {_show(key)}: cannot read ({exc.strerror})")
            return
        stamp, known = _version(st), cursor.get(key)
        # (A cursor written before versions held the inode and change time: "mtime_ns:size".)
        if known is not None and known.removeprefix("skip:").removesuffix(
                f":c{st.st_ctime_ns}") in (stamp, _stamp(st)):
            scan.cursor[key] = known
            return
        scan.candidates.append(
            _Candidate(key, real, stamp, (st.st_dev, st.st_ino), st.st_mtime_ns, st.st_size,
                       st.st_ctime_ns)
        )

    def _changed(self, fresh: list[_Candidate]) -> set[str]:
        changed = set()
        for c in fresh:
            try:
                st = os.stat(c.real)
            except OSError:
                changed.add(c.key)
                continue
            if _version(st) != c.stamp or (st.st_dev, st.st_ino) != c.dev_ino:
                changed.add(c.key)
        return changed

    def _read_all(self, candidates: list[_Candidate], scan: _Scan) -> list[Article]:
        articles = []
        for c in candidates:
            try:
                data = self._read(c, scan.root)
                art = _article_from_bytes(data, c.key.rsplit("/", 1)[-1], source=self.name,
                                          guid=None)
            except _Skip as skip:
                scan.skipped.append(f"file {_show(c.key)}: {skip.reason}")
                if skip.remember:
                    scan.cursor[c.key] = f"skip:{c.stamp}"
                elif skip.unreadable:
                    # Tried again once its contents or its permissions change (chmod changes
                    # the ctime, not the size or mtime), not on every poll.
                    scan.cursor[c.key] = f"skip:{c.stamp}:c{c.ctime_ns}"
                continue
            except Exception as exc:  # one bad file never stops the folder
                reason = str(exc)
                if not isinstance(exc, SourceError):
                    reason = f"{type(exc).__name__}: {reason}"
                scan.skipped.append(f"file {_show(c.key)}: {printable(reason)}")
                scan.cursor[c.key] = f"skip:{c.stamp}"
                continue
            scan.cursor[c.key] = c.stamp
            # content_hash is the fingerprint of the stored title and text: no second pass over it.
            guid = f"{c.key}#{art.content_hash[:16]}"
            # id derives from the guid; every other field is validated already.
            articles.append(art.model_copy(update={"guid": guid,
                                                   "id": derive_id(art.source, guid)}))
        return articles

    def _read(self, c: _Candidate, root: str) -> bytes:
        """The file's bytes, if it is still the regular file inside the folder (``root``, its
        real path) that was checked."""
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(c.real, flags | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise _Skip(f"cannot read ({exc.strerror})", remember=False,
                        unreadable=True) from None
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != c.dev_ino or not stat.S_ISREG(st.st_mode):
                raise _Skip("replaced while being read", remember=False)
            # Where the file opened really is: a folder on the way swapped for a link out of
            # the watched one, before the file was first looked at or since, leads elsewhere.
            if not _opened_inside(fd, root, c.real, st):
                raise _Skip("replaced while being read", remember=False)
            data = read_fd(fd, st.st_size, self.max_file_size + 1)
        finally:
            os.close(fd)
        if len(data) > self.max_file_size:
            raise _Skip(f"grew over the limit of {self.max_file_size} bytes")
        return data


def _show(name: str) -> str:
    """A file name for a log line, quoted, with control characters and bad bytes escaped."""
    return f"'{printable(name, limit=300)}'"
