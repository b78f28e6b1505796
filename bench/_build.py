"""What the scripts that build ``watchers/rules/data`` share: the version of the package a table
was built from, wordfreq's license line, and the command line (``--help`` prints the script's
docstring; no options)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from importlib.metadata import version

# wordfreq's data is CC BY-SA 4.0; a table derived from it carries the same terms.
WORDFREQ_LICENSE = ("# derived from the wordfreq data by Robyn Speer "
                    "(https://github.com/rspeer/wordfreq), CC BY-SA 4.0; this file is under the "
                    "same license\n")


def dist_version(name: str) -> str:
    """The installed version of the distribution ``name`` (named in a built table's header)."""
    return version(name)


def command(main: Callable[[], int], doc: str | None) -> int:
    """Run a build script's ``main`` once its command line (only ``--help``) is read."""
    argparse.ArgumentParser(description=doc,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    return main()
