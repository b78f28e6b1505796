"""Build ``watchers/rules/data/exonyms.toml``: countries' names in other languages.

A team's `iraq` should find "Irak" in a German or Turkish wire story, `qatar` "Katar", `brazil`
"Brasil", `syria` "Syrien": no spelling rule gets there (transliteration rules do not turn q
into k for one country and leave it elsewhere). The names come from the ISO 3166-1 translations
that ``pycountry`` ships (the Debian iso-codes project), in 17 languages written in Latin or
Cyrillic letters, each grouped with the country's English name.

Kept only when it is safe for every rule that uses the shipped aliases, plain words included:

- one word each (the English name and the other), at least four letters;
- not a name of two countries (a language's name of one that is another's English name, or
  the same form for two countries in two languages);
- not a word or name in English in its own right (``variants.is_known_word``: German "Island"
  for Iceland, French "Maurice" for Mauritius, Polish "Indie" for India are left out).

Run from the repo root with pycountry installed (it is not a dependency of newswatch; the
shipped file is): ``pip install -e '.[lexicon]' && python bench/build_exonyms.py``.
"""

from __future__ import annotations

import gettext
import json
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from watchers.rules.text import key  # noqa: E402
from watchers.rules.variants import is_known_word, load_word_tables  # noqa: E402

OUT = REPO / "watchers" / "rules" / "data" / "exonyms.toml"
LANGUAGES = ("de", "fr", "es", "it", "pt", "pl", "nl", "tr", "sv", "da", "fi", "cs", "hr", "ro",
             "hu", "ru", "uk")
MIN_LETTERS = 4


def _single(name: str) -> str | None:
    name = name.strip()
    if not name or any(not (c.isalpha() or c == "'") for c in name):
        return None  # several words, a comma, a hyphen, a digit
    k = key(name)
    return k if len(k) >= MIN_LETTERS else None


def build() -> tuple[dict[str, list[str]], int, dict[str, int]]:
    """(English key → other keys, countries, names left out by reason)."""
    import pycountry

    load_word_tables(wordfreq=True)
    translations = {lang: gettext.translation("iso3166-1", pycountry.LOCALES_DIR,
                                              languages=[lang]) for lang in LANGUAGES}
    english: dict[str, set[str]] = defaultdict(set)  # country → its one-word English keys
    foreign: dict[str, set[str]] = defaultdict(set)  # country → other languages' keys
    for c in pycountry.countries:
        names = [c.name, *(n for n in (getattr(c, "common_name", None),) if n)]
        for n in names:
            if (k := _single(n)) is not None:
                english[c.alpha_2].add(k)
            for t in translations.values():
                if (k := _single(t.gettext(n))) is not None:
                    foreign[c.alpha_2].add(k)
    owners: dict[str, set[str]] = defaultdict(set)
    for table in (english, foreign):
        for code, keys in table.items():
            for k in keys:
                owners[k].add(code)
    left_out = {"two countries": 0, "an English word or name": 0}
    out: dict[str, list[str]] = {}
    for code in sorted(english):
        heads = sorted(k for k in english[code] if len(owners[k]) == 1)
        if not heads:
            continue
        others = []
        for k in sorted(foreign[code] - english[code]):
            if len(owners[k]) > 1:
                left_out["two countries"] += 1
            elif is_known_word(k):
                left_out["an English word or name"] += 1
            else:
                others.append(k)
        rest = heads[1:] + others
        if rest:
            out[heads[0]] = rest
    return out, len(english), left_out


def main() -> int:
    import pycountry

    table, countries, left_out = build()
    version = getattr(pycountry, "__version__", "") or _dist_version("pycountry")
    with OUT.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write(f"# Countries' names in other languages (ISO 3166-1, pycountry {version}), built "
                 "by bench/build_exonyms.py:\n# one word each, none naming two countries, none a "
                 "word or name in English in its own right.\n# Translations from the iso-codes "
                 "project (LGPL-2.1-or-later). Merged into aliases.toml's table.\n\n"
                 "[aliases]\n")
        for head, others in table.items():
            items = ", ".join(json.dumps(o, ensure_ascii=False) for o in others)
            fh.write(f"{json.dumps(head, ensure_ascii=False)} = [{items}]\n")
    names = sum(len(v) for v in table.values())
    print(f"{len(table)} of {countries} countries, {names:,} other names written to "
          f"{OUT.relative_to(REPO)}; left out: "
          + ", ".join(f"{n} {why}" for why, n in left_out.items()), file=sys.stderr)
    return 0


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    raise SystemExit(main())
