"""Which config file a command reads: ``-c FILE``, else ``config.toml``, else the example."""

from __future__ import annotations

import argparse
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watchers.config import Config

__all__ = ["config_arg", "config_path", "load", "not_a_file", "write_output"]


def config_arg(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("-c", "--config", metavar="FILE",
                    help="config file (default: config.toml, else config.example.toml)")


def config_path(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    from watchers.errors import ConfigError, ConfigIssue

    mine = Path("config.toml")
    if os.path.lexists(mine) and not mine.is_file():
        # There but not a file: named, never passed over for the example, whose store,
        # rules and feeds every command then used without a word (a bind mount of a file
        # missing on the host is a folder; a link to a disk not mounted yet leads nowhere).
        if mine.is_dir():
            what = "a folder, not a file"
        elif not mine.exists():
            what = f"a link to {os.readlink(mine)[:200]!r}, which does not exist"
        else:
            return mine  # a pipe or a device: read as it is (see load_config)
        raise ConfigError([ConfigIssue("", f"{what}; newswatch reads config.toml here when "
                                       "there is one, not config.example.toml (give a file "
                                       "with -c FILE)")], file="config.toml")
    for candidate in ("config.toml", "config.example.toml"):
        if Path(candidate).is_file():
            return Path(candidate)
    raise ConfigError([ConfigIssue("", "no config file here: neither config.toml nor "
                                   "config.example.toml (give one with -c FILE)")],
                      file="config.toml")


def load(arg: str | None, *, watching: bool = False) -> Config:
    """The config a command reads. Only ``run`` watches with it (``watching``): the commands
    that read or fill the store accept a file that names no source or rule."""
    # The config models (pydantic) load here, for the commands that read a config, not when
    # `newswatch` starts: `--help` and the offline commands do without them.
    from watchers.config import load_config

    return load_config(config_path(arg), watching=watching)


class WriteFailed(str):
    """:func:`write_output`'s reason when the system refused the write (a missing folder, no
    permission, a full disk): an error of the run (exit 1), not of the arguments (exit 2)."""


def write_output(out: Path, data: bytes, *, what: str, looks_like: Callable[[bytes], bool],
                 cfg: Config, config_file: Path) -> str | None:
    """Write ``data`` (a ``what``: "PNG image", "OPML file") to ``out`` whole, or say why not.

    Refused: the config file and the SQLite store with its ``-wal``, ``-shm`` and ``.lock``
    files (a slip of tab completion would otherwise replace the database with a chart), and
    any other file already there that does not look like a ``what`` (``looks_like`` reads its
    first bytes). The data goes to a temporary file in the same folder, renamed over ``out``,
    so an interrupted write leaves the old file. Returns None when written, else the reason
    (a :class:`WriteFailed` when the system refused it).
    """
    from watchers.store.sqlite import SIDECARS

    try:
        # The path as given, links followed by the system: /dev/stdout on a pipe resolves to
        # "/proc/<pid>/fd/pipe:[…]", a name that does not exist, where stat finds the pipe.
        special = not (stat.S_ISREG(mode := os.stat(out).st_mode) or stat.S_ISDIR(mode))
    except OSError:
        special = False
    if special:
        # A device, pipe or socket (/dev/stdout, /dev/null, a FIFO): written into, as any
        # program writes to one. Renamed over, /dev/null became a plain file for the whole
        # machine.
        try:
            with open(out, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            return WriteFailed(f"cannot write {out}: {exc.strerror or exc}")
        return None
    target = out.resolve()
    guarded = {config_file.resolve()}
    if cfg.storage.url is None:
        store = cfg.resolve(cfg.storage.path).resolve()
        guarded |= {store, *(Path(f"{store}{end}") for end in (*SIDECARS, ".lock"))}
    if target in guarded:
        which = "config" if target == config_file.resolve() else "database"
        return f"{out} is newswatch's {which}: not overwritten; give another name"
    if target.is_dir():
        return f"{out} is a folder; give a file name"
    if target.exists():
        try:
            with target.open("rb") as fh:
                head = fh.read(1024)
        except OSError as exc:
            return WriteFailed(f"cannot read {out} to check it: {exc.strerror or exc}")
        if head and not looks_like(head):
            article = "an" if what[:1].upper() in "AEIOU" else "a"
            return (f"{out} exists and is not {article} {what}: not overwritten; give another "
                    "name")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as exc:
        return WriteFailed(f"cannot write {out}: {exc.strerror or exc}")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        return WriteFailed(f"cannot write {out}: {exc.strerror or exc}")
    return None


def not_a_file(path: Path) -> str:
    """Why ``path``, a file a command was asked to read that is not a regular file, cannot be
    read: missing, a loop of links or a folder it may not search (both said "no such file"),
    or something other than a file."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return f"{path}: no such file"
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    return f"{path} is not a file"
