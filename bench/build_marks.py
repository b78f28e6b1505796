"""Build the table of combining marks the word scan keeps inside words.

A word is letters and digits (``\\w``), and the marks that go with them: Python's ``\\w`` leaves
out every combining mark (Unicode's general category M: Mn, Mc, Me), so without them Hindi,
Bengali, Tamil or Thai words fell apart at each vowel sign ("मोदी" was the words "म" and "द",
found in "मैदान" and "मुद्दा"). This writes the ranges of every mark of this Python's Unicode
database to ``watchers/rules/_marks.py`` and the same table into ``watchers/rules/_ctext.c``
(between the ``MARKS`` markers). Run from the repo root with the Python that runs newswatch:
``python bench/build_marks.py``; tests/rules/test_text.py checks the shipped table against
``unicodedata`` and the C scan against the pure one.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = REPO / "watchers" / "rules" / "_marks.py"
C = REPO / "watchers" / "rules" / "_ctext.c"
C_BEGIN = "/* MARKS begin: made by bench/build_marks.py */"
C_END = "/* MARKS end */"


def mark_ranges() -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    start = None
    for cp in range(0x110001):
        mark = cp < 0x110000 and unicodedata.category(chr(cp)).startswith("M")
        if mark and start is None:
            start = cp
        elif not mark and start is not None:
            out.append((start, cp - 1))
            start = None
    return out


def _rows(items: list[str], indent: str, width: int = 96) -> str:
    lines, cur = [], ""
    for item in items:
        if cur and len(indent) + len(cur) + len(item) + 1 > width:
            lines.append(indent + cur)
            cur = ""
        cur += (" " if cur else "") + item
    lines.append(indent + cur)
    return "\n".join(lines) + "\n"


def main() -> None:
    ranges = mark_ranges()
    version = unicodedata.unidata_version
    PY.write_text(
        '"""The combining marks (Unicode\'s general category M: Mn, Mc, Me) as ranges of code\n'
        f"points, of Unicode {version}; ``watchers/rules/_ctext.c`` holds the same table "
        "(``MARKS``).\nMade by ``bench/build_marks.py``; tests/rules/test_text.py checks both."
        '"""\n\n'
        f'UNICODE_VERSION = "{version}"\n\n'
        "MARK_RANGES: tuple[tuple[int, int], ...] = (\n"
        + _rows([f"(0x{a:X}, 0x{b:X})," for a, b in ranges], "    ")
        + ")\n", encoding="utf-8")
    table = (f"{C_BEGIN}\n/* Unicode {version}: every code point of general category M. */\n"
             f"#define MARKS_COUNT {len(ranges)}\n"
             "static const Py_UCS4 MARKS[MARKS_COUNT][2] = {\n"
             + _rows([f"{{0x{a:X}, 0x{b:X}}}," for a, b in ranges], "    ")
             + f"}};\n{C_END}")
    source = C.read_text(encoding="utf-8")
    block = re.compile(re.escape(C_BEGIN) + ".*?" + re.escape(C_END), re.S)
    if not block.search(source):
        raise SystemExit(f"{C}: no {C_BEGIN!r} … {C_END!r} block to replace")
    C.write_text(block.sub(lambda _: table, source), encoding="utf-8")
    print(f"{len(ranges)} ranges of marks (Unicode {version}) written to {PY.name} and {C.name}")


if __name__ == "__main__":
    main()
