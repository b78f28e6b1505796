"""Re-key the shipped word tables (``watchers/rules/data``) after a change of the word keys
(``watchers.rules.text.key``), without the sources the build scripts read (wordfreq's lists,
GeoNames, CLDR): each stored key is folded again, in place, and what the fold merges is merged.

The tables hold keys, which the fuzzy judge compares with the keys of a text; a key that no text
folds to any more (``bakı`` once ``ı`` folds to ``i``) would never be found. Run it after a key
change that the build scripts would also pick up, and check its summary:

    .venv/bin/python bench/rekey_tables.py

- ``cities.json``, ``exonyms.toml``: each name re-keyed; a name that becomes its group's head or
  another name of the group is dropped, and so is one that would name two groups or that the
  fold makes a known word or name (``bakı`` → ``baki``) or the head with a suffix.
- ``lexicon.txt``: words and names re-keyed, sorted again.
- ``foreign_words.txt``: keys re-keyed and kept sorted (it is binary-searched); two keys that
  fold alike merge their language letters (upper case wins).
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from watchers.rules import variants  # noqa: E402
from watchers.rules.text import key  # noqa: E402
from watchers.rules.variants import FOREIGN_LANGS, is_known_word  # noqa: E402

DATA = REPO / "watchers" / "rules" / "data"
# The language letters of a foreign_words.txt line, in the order the build writes them.
_ORDER = "".join(c for letter in FOREIGN_LANGS.values() for c in (letter.upper(), letter))


def _rekey(word: str) -> str:
    k = key(word)
    return k if k and " " not in k else word


# Names the re-keyed lexicon lists that the old one did not (see _lexicon): a table name equal
# to one of them now names something else too.
_NEW_NAMES: set[str] = set()


def _groups(table: dict[str, list[str]], owner: dict[str, str]) -> tuple[dict[str, list[str]], int]:
    """The table re-keyed; ``owner`` (name → head, shared across tables) refuses a name that
    another group holds already."""
    out: dict[str, list[str]] = {}
    dropped = 0
    for head, others in table.items():
        h = _rekey(head)
        kept: list[str] = []
        # A key that ended in ı may have been a name in ıs with its s taken for a plural
        # (Kıbrıs → kıbrı): in is, the fold now keeps the s (kibris).
        both = [*others, *(o + "s" for o in others if o.endswith("ı"))]
        for o in both:
            k = _rekey(o)
            if k == h or k in kept or owner.setdefault(k, h) != h or k in _NEW_NAMES or (
                    k != o and (is_known_word(k) or (k.startswith(h) and len(k) > len(h) + 2))):
                # Merged, another group's, or (newly) a word or name of its own or the head
                # with a suffix: what the build leaves out.
                dropped += k != o
                continue
            kept.append(k)
        out[h] = sorted(kept)
    return out, dropped


def _cities() -> int:
    path = DATA / "cities.json"
    data = json.loads(path.read_text("utf-8"))
    owner: dict[str, str] = {}
    for h, others in data["aliases"].items():
        for name in (h, *others):
            if name == _rekey(name):  # names the fold keeps keep their group
                owner.setdefault(name, h)
    cities, dropped = _groups(data["aliases"], owner)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write('{"about": ' + json.dumps(data["about"]) + ',\n"aliases": {\n')
        fh.write(",\n".join(f"{json.dumps(h, ensure_ascii=False)}: "
                            f"{json.dumps(o, ensure_ascii=False)}" for h, o in cities.items()))
        fh.write("\n}}\n")
    return dropped


def _exonyms() -> int:
    path = DATA / "exonyms.toml"
    text = path.read_text("utf-8")
    header, _, _ = text.partition("[aliases]\n")
    table = tomllib.loads(text)["aliases"]
    exonyms, dropped = _groups(table, {})
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write(header + "[aliases]\n")
        for head, others in exonyms.items():
            items = ", ".join(json.dumps(o, ensure_ascii=False) for o in others)
            fh.write(f"{json.dumps(head, ensure_ascii=False)} = [{items}]\n")
    return dropped


def _lexicon() -> int:
    path = DATA / "lexicon.txt"
    text = path.read_text("utf-8")
    header = ""
    while text.startswith("#"):
        line, _, text = text.partition("\n")
        header += line + "\n"
    words, _, names = text.partition("\n[names]\n")
    new_words = {_rekey(w) for w in words.split()}
    new_names = {_rekey(n) for n in names.split()} - new_words
    _NEW_NAMES.update((new_words | new_names) - set(words.split()) - set(names.split()))
    variants._lexicon = None  # the tables' checks read the new one
    body = "\n".join(sorted(new_words)) + "\n[names]\n" + "\n".join(sorted(new_names)) + "\n"
    path.write_text(header + body, encoding="utf-8")
    return len(words.split()) + len(names.split()) - len(new_words) - len(new_names)


def _foreign() -> int:
    path = DATA / "foreign_words.txt"
    header: list[str] = []
    rows: dict[str, str] = {}
    n = 0
    for line in path.read_text("utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            header.append(line)
            continue
        word, letters = line.split(" ", 1)
        n += 1
        k = _rekey(word)
        if k not in rows:
            rows[k] = letters
            continue
        merged = set(rows[k]) | set(letters)
        rows[k] = "".join(c for c in _ORDER if c in merged and (c.isupper() or c.upper()
                                                               not in merged))
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write("\n".join(header) + "\n")
        for k in sorted(rows):
            fh.write(f"{k} {rows[k]}\n")
    return n - len(rows)


def main() -> int:
    for name, run in [("lexicon.txt", _lexicon), ("cities.json", _cities),
                      ("exonyms.toml", _exonyms), ("foreign_words.txt", _foreign)]:
        print(f"{name}: {run()} entries merged or dropped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
