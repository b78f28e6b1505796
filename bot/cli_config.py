"""Which config file a command reads: ``-c FILE``, else ``config.toml``, else the example."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watchers.config import Config

__all__ = ["config_arg", "config_path", "load"]


def config_arg(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("-c", "--config", metavar="FILE",
                    help="config file (default: config.toml, else config.example.toml)")


def config_path(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    for candidate in ("config.toml", "config.example.toml"):
        if Path(candidate).is_file():
            return Path(candidate)
    return Path("config.toml")


def load(arg: str | None, *, watching: bool = False) -> Config:
    """The config a command reads. Only ``run`` watches with it (``watching``): the commands
    that read or fill the store accept a file that names no source or rule."""
    # The config models (pydantic) load here, for the commands that read a config, not when
    # `newswatch` starts: `--help` and the offline commands do without them.
    from watchers.config import load_config

    return load_config(config_path(arg), watching=watching)
