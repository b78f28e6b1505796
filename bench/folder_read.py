"""The folder source's own cost: looking over a folder and reading its new files (printed, never
asserted).

Writes ``--files`` corpus articles as JSON files into a temporary folder (the files
``bench/ingest.py`` drops into its watched folder), then times, per file, in CPU time:

- poll: the source's whole poll of the folder, every file new (listing, looking at each file,
  reading and parsing it into an article);
- look: the look over the folder alone (what every later poll does when its files are known);
- read: reading and parsing the files found.

With ``--against FILE`` (another version of ``watchers/sources/folder.py``, e.g.
``git show 0a32124:watchers/sources/folder.py > /tmp/old_folder.py``) both versions are timed
in the same process, taking turns for ``--rounds`` rounds, so that a slow spell of the machine
meets both; the best and the median round of each are printed.

    .venv/bin/python bench/folder_read.py [--files 10000] [--rounds 6] [--against FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import load_records, pick, write_folder

from watchers.sources import folder as current


def _module(path: Path) -> ModuleType:
    """The folder source module at ``path``, loaded beside the installed one."""
    spec = importlib.util.spec_from_file_location("folder_against", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules["folder_against"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _round(module: ModuleType, folder: Path) -> dict[str, float]:
    """µs of CPU a file: the whole poll, then the look and the read on their own."""
    source: Any = module.FolderSource("inbox", folder, settle=timedelta(0))
    c0 = time.process_time()
    poll = asyncio.run(source.poll({}))
    c1 = time.process_time()
    scan = source._scan({})
    c2 = time.process_time()
    read = source._read_all(scan.candidates, scan)
    c3 = time.process_time()
    n = len(poll.articles)
    if n == 0 or len(read) != n:
        raise SystemExit(f"{module.__name__}: read {n} and {len(read)} files")
    return {"poll": (c1 - c0) / n * 1e6, "look": (c2 - c1) / n * 1e6,
            "read": (c3 - c2) / n * 1e6}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--against", type=Path, help="another version of folder.py, timed beside")
    args = ap.parse_args(argv)
    versions: dict[str, ModuleType] = {}
    if args.against is not None:
        versions[f"against ({args.against.name})"] = _module(args.against)
    versions["this version"] = current
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "inbox"
        write_folder(folder, pick(load_records(), args.files), 0)
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in versions}
        for _ in range(args.rounds):
            for name, module in versions.items():
                rounds[name].append(_round(module, folder))
    print(f"== the folder source: {args.files} corpus files, µs of CPU a file, best / median "
          f"of {args.rounds} rounds" + (", the versions taking turns" if len(versions) > 1
                                       else ""))
    for name, got in rounds.items():
        cells = []
        for part in ("poll", "look", "read"):
            values = [r[part] for r in got]
            cells.append(f"{part} {min(values):.0f} / {statistics.median(values):.0f}")
        best = min(r["poll"] for r in got)
        print(f"  {name:<28} {' · '.join(cells)}  ({1e6 / best:,.0f} files/s at best)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
