"""Build ``watchers/rules/data/foreign_words.txt``: words common in other European languages.

A fuzzy term takes a token within its typo tolerance unless the token is a word in its own
right, which the English word lists and the lexicon decide. Other languages' words slip past
them: French "putain" for ``putin~``, German "Trumpf" for ``trump~``, Italian "Romagna" for
``romania~``. But another language's own name for the term's thing is often a common word there
too (French "Bretagne" for ``brittany~``, German "Parlament"), and must stay a variant. What
tells them apart is whether that language writes the term itself: French text writes "Putin"
and "Macron" as English does, so a French "putain" or "macaron" is another French word; it does
not write "Brittany", so its common "Bretagne" may be its name for it.

The table holds, for each word key (:func:`watchers.rules.text.key`, as matching compares), the
:data:`LANGUAGES` it is common in, one letter each (:data:`watchers.rules.variants.FOREIGN_LANGS`):
upper case at or above :data:`~watchers.rules.variants.FOREIGN_TERM_ZIPF` (a term that
language writes), lower case at or above :data:`~watchers.rules.variants.FOREIGN_WORD_ZIPF`
and below it (a word of that language, no more). Keys folded alike (accents, a plural) keep the
highest value. Only keys that can decide anything are kept, about 100,000 of a million:

- as a term: a key English text uses too (in ``zipf_en.txt``), of at least
  :data:`~watchers.rules.variants.MIN_TYPO_LETTERS` letters (shorter terms take no typos but
  swapped letters);
- as a token: a key that no English list or lexicon turns away first, within
  :data:`NEAR` similarity (on keys or loose keys) of a term common in the same language, since
  only a token that close can reach the typo step at a threshold of :data:`NEAR` or more (the
  default is 85).

Only the build needs wordfreq's data (it is a dependency anyway). Run from the repo root:
``python bench/build_foreign_words.py`` (about a minute); ``tests/rules/test_zipf.py`` checks
the shipped file against the installed wordfreq.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the build scripts' shared part
from _build import WORDFREQ_LICENSE, command, dist_version  # noqa: E402

sys.path.insert(0, str(REPO))

from watchers.rules import variants  # noqa: E402
from watchers.rules.text import key  # noqa: E402

OUT = REPO / "watchers" / "rules" / "data" / "foreign_words.txt"
LANGUAGES = tuple(variants.FOREIGN_LANGS)
NEAR = 80.0


def zipf_by_key() -> dict[str, dict[str, float]]:
    """key → {language: highest wordfreq zipf value of a word with that key}, for values at or
    above the word threshold."""
    import wordfreq

    table: dict[str, dict[str, float]] = {}
    for lang in LANGUAGES:
        for word in wordfreq.get_frequency_dict(lang, wordlist="best"):
            if not word.isalpha():
                continue
            z = wordfreq.zipf_frequency(word, lang)
            if z < variants.FOREIGN_WORD_ZIPF:
                continue
            k = key(word)
            if not k.isalpha():
                continue
            row = table.setdefault(k, {})
            row[lang] = max(row.get(lang, 0.0), z)
    return table


def build() -> dict[str, str]:
    """key → its letters (see the module's doc), for the keys that can decide anything."""
    from rapidfuzz import fuzz, process

    english = variants._load_zipf_table()
    words, names = variants._load_lexicon()
    table = zipf_by_key()
    term_rows: set[str] = set()
    token_rows: set[str] = set()
    for lang in LANGUAGES:
        terms = [k for k, row in table.items()
                 if row.get(lang, 0.0) >= variants.FOREIGN_TERM_ZIPF and k in english
                 and len(k) >= variants.MIN_TYPO_LETTERS]
        tokens = [k for k, row in table.items()
                  if lang in row and k not in words and k not in names
                  and not variants.is_common_word(k)]
        term_rows.update(terms)
        for fold in (str, variants.loose_key):
            near = process.cdist([fold(k) for k in tokens], [fold(k) for k in terms],
                                 scorer=fuzz.ratio, score_cutoff=NEAR, workers=-1,
                                 dtype="uint8")
            hit = near.any(axis=1)
            token_rows.update(k for k, h in zip(tokens, hit, strict=True) if h)
    out = {}
    for k in sorted(term_rows | token_rows):
        letters = ""
        for lang, letter in zip(LANGUAGES, variants.FOREIGN_LANGS.values(), strict=True):
            z = table[k].get(lang, 0.0)
            if z >= variants.FOREIGN_TERM_ZIPF:
                letters += letter.upper()
            elif z >= variants.FOREIGN_WORD_ZIPF and k in token_rows:
                letters += letter
        if letters:
            out[k] = letters
    return out


def main() -> int:
    import wordfreq

    rows = build()
    version = getattr(wordfreq, "__version__", None) or dist_version("wordfreq")
    langs = " ".join(f"{letter}={lang}" for lang, letter in variants.FOREIGN_LANGS.items())
    with OUT.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write(f"# word keys common in other languages ({langs}; upper case: zipf >= "
                 f"{variants.FOREIGN_TERM_ZIPF}, lower case: >= {variants.FOREIGN_WORD_ZIPF}), "
                 f"from wordfreq {version} (bench/build_foreign_words.py)\n")
        fh.write(WORDFREQ_LICENSE)
        for k, letters in rows.items():
            fh.write(f"{k} {letters}\n")
    print(f"{len(rows):,} keys written to {OUT.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(command(main, __doc__))
