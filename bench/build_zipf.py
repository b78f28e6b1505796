"""Build ``watchers/rules/data/zipf_en.txt``: how common each plain English word is.

The rule engine and story grouping ask how common a word is in English (its zipf value: log10 of
its frequency per billion words; "the" is 7.73, "ukraine" 4.32). wordfreq answers, but importing
it and reading its tables costs about 0.3 s, which every short command (``newswatch search``)
would pay. Only values above :data:`FLOOR` change any decision (the highest threshold below
which every word counts the same is story grouping's weight clamp at 2.5; the common-word and
compound thresholds are 3.0 and 3.5), so this table holds the words of lowercase a-z letters
that wordfreq rates above it, with wordfreq's own value, one ``word value`` pair a line, sorted.
Other strings (digits, accents, other scripts) are still asked of wordfreq at run time.

Only the build needs wordfreq's data (it is a dependency anyway). Run from the repo root:
``python bench/build_zipf.py``; ``tests/rules/test_zipf.py`` checks the shipped file against the
installed wordfreq.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the build scripts' shared part
from _build import WORDFREQ_LICENSE, command, dist_version  # noqa: E402

OUT = REPO / "watchers" / "rules" / "data" / "zipf_en.txt"
FLOOR = 2.5
_PLAIN = re.compile(r"[a-z]+")


def build() -> list[tuple[str, float]]:
    import wordfreq

    words = wordfreq.get_frequency_dict("en", wordlist="best")
    out = []
    for w in sorted(words):
        if _PLAIN.fullmatch(w):
            z = wordfreq.zipf_frequency(w, "en")
            if z > FLOOR:
                out.append((w, z))
    return out


def main() -> int:
    import wordfreq

    rows = build()
    version = getattr(wordfreq, "__version__", None) or dist_version("wordfreq")
    with OUT.open("w", encoding="ascii", newline="\n") as fh:
        fh.write(f"# zipf values of plain English words above {FLOOR}, from wordfreq {version} "
                 "(bench/build_zipf.py)\n")
        fh.write(WORDFREQ_LICENSE)
        for w, z in rows:
            fh.write(f"{w} {z!r}\n")
    print(f"{len(rows):,} words written to {OUT.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(command(main, __doc__))
