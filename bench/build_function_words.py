"""Build ``watchers/rules/data/function_words.txt``: other languages' commonest words.

Story grouping weighs a word by how rare it is in English (wordfreq's zipf value): a name weighs
most, "the" nothing. A word English never writes weighed as much as the rarest name, so the
Greek "στην" (in the) or the Russian "что" (that) gave two headlines about two events in one
place enough shared weight to be one story ("earthquake in Crete" and "fire in Crete"). This
table lists the words of other languages as common there as the words English weighs nothing
(zipf at least :data:`STOP_ZIPF`: grammar, "people", "time") and far rarer in English (below
:data:`ENGLISH_BELOW`, by :data:`GAP` or more), folded as the story signature folds a word.

Only words in other scripts (Greek, Cyrillic, Arabic, Hebrew ...): a word in Latin letters that
common in one language is a name or a word in another, as English writes it ("nato" is Italian
for "born", "putin" French slang, "roma" Rome), so French "les" or Spanish "los" keep the weight
English gives them (about 4; a rare name weighs 6). One word a line, sorted.

Only the build needs wordfreq's data (a dependency anyway). Run from the repo root:
``python bench/build_function_words.py``; ``tests/stories/test_function_words.py`` checks the
shipped file against the installed wordfreq.
"""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the build scripts' shared part
from _build import WORDFREQ_LICENSE, command, dist_version  # noqa: E402

OUT = REPO / "watchers" / "rules" / "data" / "function_words.txt"
# The languages news reaches newswatch in besides English (those wordfreq has a list for).
LANGUAGES = ("ar", "bg", "ca", "cs", "da", "de", "el", "es", "fa", "fi", "fr", "he", "hu", "id",
             "it", "nb", "nl", "pl", "pt", "ro", "ru", "sk", "sl", "sv", "tr", "uk")
STOP_ZIPF = 5.6  # as watchers.stories.features._STOP_ZIPF: English words this common weigh 0
ENGLISH_BELOW = 4.8
GAP = 1.5
TOP = 400  # each language's commonest words looked at (the grammar words are among them)


def build() -> list[str]:
    import wordfreq

    from watchers.rules.text import FieldText
    from watchers.rules.variants import _zipf

    out: set[str] = set()
    for lang in LANGUAGES:
        for word in wordfreq.top_n_list(lang, TOP, wordlist="best"):
            there = wordfreq.zipf_frequency(word, lang, wordlist="best")
            if there < STOP_ZIPF:
                continue
            ft = FieldText.of(word)
            if len(ft.norms) != 1 or len(ft.norms[0]) < 2:
                continue  # not one word once folded (an apostrophe, a digit), or a letter
            norm = ft.norms[0]
            if any(unicodedata.name(c, "").startswith("LATIN") or c.isascii() for c in norm):
                continue
            english = _zipf(norm)
            if english < ENGLISH_BELOW and there - english >= GAP:
                out.add(norm)
    return sorted(out)


def main() -> int:
    words = build()
    OUT.write_text(
        "# Other languages' commonest words in other scripts (zipf >= 5.6 there, < 4.8 and 1.5 "
        "less in English), folded; built "
        f"by bench/build_function_words.py from wordfreq {dist_version('wordfreq')}\n"
        + WORDFREQ_LICENSE + "".join(f"{w}\n" for w in words), encoding="utf-8")
    print(f"{OUT}: {len(words)} words")
    return 0


if __name__ == "__main__":
    sys.exit(command(main, __doc__))
