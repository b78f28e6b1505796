"""Fuzzy terms on names nobody tuned them for: every word each term takes in the shared corpora,
and hand-labelled spellings of places and people outside the evaluation sets.

``make eval`` scores sets the rules were written with or probed on. This check asks two other
questions, of names from every region (Beijing, Mumbai, Chennai, Myanmar, Gaza, Tbilisi,
Chisinau, Almaty, Gdansk, Vilnius beside Ukraine's cities and people):

- **the corpora** (``../shared/corpora/articles``: BBC news 2004-05, web pages about Ukraine
  from 2026, 10,000 Reddit headlines 2021-22): every distinct word each ``term~`` takes at the
  default threshold, with how often, each judged by hand in :data:`JUDGED` (a word taken that
  is not judged yet is listed as such, for a reader to judge);
- **the pairs** (:data:`PAIRS`): spellings in English, German, French, Polish, Ukrainian and
  Russian (Peking, Birma, Charków, Одесі, Zełenskiego, Prigoschin, Кишинёв) and look-alikes
  (other people, villages, words), written from knowledge of the names before they were run.

Scored when built, before the alias table's fixes it led to (see ``docs/matching-quality.md``).
Run from the repo root: ``.venv/bin/python bench/match_unseen.py`` (``-v`` lists every word
taken and every pair wrong). Without the corpora the corpus part is skipped, saying so.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from watchers.models import Article  # noqa: E402
from watchers.rules import DEFAULT_THRESHOLD, match_query, shipped_aliases, tokenize  # noqa: E402
from watchers.rules.lookup import Vocabulary  # noqa: E402
from watchers.rules.variants import compare  # noqa: E402

CORPORA = REPO.parent / "shared" / "corpora" / "articles"

# The terms scanned in the corpora: the places and people of the pairs below, and a few more
# names from the same news.
TERMS = (
    "beijing", "mumbai", "chennai", "myanmar", "gaza", "kharkiv", "odesa", "chernihiv",
    "zaporizhzhia", "mariupol", "tbilisi", "chisinau", "almaty", "gdansk", "vilnius", "lviv",
    "zelensky", "navalny", "shoigu", "prigozhin", "kyiv", "luhansk", "donetsk", "mykolaiv",
    "pokrovsk", "avdiivka", "kupiansk", "sikorski", "syrskyi", "peskov", "kursk", "tehran",
    "seoul", "italy",
)

# Every word (a key) that a term took in the corpora when this set was built, other than the
# term itself: True when it is the term's name (a spelling, a case form, the name inside a URL
# such as "%20Zelensky"), False when it is another word or name.
JUDGED: dict[str, dict[str, bool]] = {
    "beijing": {"beijinger": False},  # a demonym, "Beijingers"
    "mumbai": {"bombay": True},
    "chennai": {"ginni": False, "henney": False},
    "kharkiv": {"kharkov": True, "harkovi": True},  # "u-harkovi" in a URL, "in Kharkiv"
    "odesa": {"odessa": True},
    "chernihiv": {"chernigov": True, "chernov": False},  # Mstyslav Chernov, a photographer
    "zaporizhzhia": {"zaporizhia": True, "zaporozhye": True, "zaporizzi": True,
                     "zaporizhzhya": True, "zaporizhzia": True},
    "vilnius": {"vilne": False},  # a village near Dobropillya (and Yiddish for Vilnius)
    "zelensky": {"zelenskyy": True, "zelenskiy": True, "2fzelensky": True, "zelene": False,
                 "zelenyi": False, "zelenskyyua": True, "20zelensky": True,
                 "20zelenskyy": True, "zelenskyi": True, "2fzelenskyy": True,
                 "elensky": True, "zelenskij": True, "zeleny": False},
    "navalny": {"navalnew": False},  # "NavalNews"
    "shoigu": {"shochu": False},
    "kyiv": {"kiev": True},
    "luhansk": {"lugansk": True, "yugansk": False},  # Yuganskneftegaz, in the Yukos stories
    "donetsk": {"donetska": False, "22donetsk": True},  # the region's adjective, a URL
    "mykolaiv": {"mykolaivka": False, "mykolaj": False, "mykola": False,
                 "nikolaev": True},  # "Mykola" (Bielieskov), a given name
    "pokrovsk": {"pokrovka": False, "pokrovske": False, "pokrovsky": False},
    "avdiivka": {"nadiivka": False},
    "kupiansk": {"kupyansk": True, "kupiansky": False},
    "sikorski": {"syrskyi": False, "sirskij": False, "syrskii": False},
    "syrskyi": {"siverskyi": False, "sikorski": False, "sirskij": True, "syrskii": True},
    "peskov": {"20peskov": True, "pisky": False},
    "kursk": {"kuusk": False},
    "tehran": {"tigrayan": False},
    "seoul": {"juul": False, "simul": False},  # "simul..." cut short
    "italy": {"vitaliy": False, "vitaly": False},
}

# Per term (a key), its names in other spellings, languages and case forms, then after "/"
# look-alikes that are other words or names: written from knowledge of the names, before they
# were run. A line that begins with spaces goes on with the line above.
PAIRS = """
beijing: Peking Pékin Pekin Pekinie Pekinu Pechino Пекин Пекине Пекін Пекіні Bejing Beijng /
  Bering
mumbai: Bombay Bombaj Bombaju Mumbaju Мумбаи Мумбаї Бомбей Mumbia / Mumbo
chennai: Madras Мадрас Ченнаи Ченнаї Chenai / Ginni Henney Chenab
myanmar: Burma Birma Birmanie Mjanma Mjanmie Мьянма М'янма Бирма Myanamr / Jean-Marie
  Myanmarese
gaza: Gazy Gazie Газа Газы Газі Газе Ghaza / Gaze gazes Gazan has-a Gala
kharkiv: Kharkov Charkiw Charkow Charków Charkowie Charkowa Kharkiw Kharkhiv Kharkov's
  Kharkiv's Харків Харкові Харкова Харьков Харькове Харькова / Kharkivska Kharkivskyi
  Kharkovsky
odesa: Odessa Odessy Odessie Odesie Odesy Одеса Одесі Одеси Одесса Одессе Одессы Odesa's / odes
  Odense Odisha Medusa Oresa
chernihiv: Chernigov Tschernihiw Tschernigow Czernihów Czernihowie Černihiv Tchernihiv Чернігів
  Чернігові Чернигов Чернигове Chernhiv Chernihiv-based / Chernivtsi Chernobyl Cherkasy Chernov
  Chernykh
zaporizhzhia: Zaporizhia Zaporozhye Zaporizhzhya Zaporijia Zaporijjia Saporischschja
  Saporischja Zaporoże Zaporożu Zaporoża Zaporižžja Zaporizhzhia's Запоріжжя Запоріжжі
  Запорожье Запорожья / Zaporozhets
mariupol: Mariupol' Marioupol Mariupolu Mariupolem Маріуполь Маріуполі Мариуполь Мариуполе
  Mariupl Marripol / Mariposa
tbilisi: Tiflis Tbilissi Тбилиси Тбілісі Tblisi Tbilisi's
chisinau: Kishinev Chișinău Kischinau Kischinjow Kiszyniów Kiszyniowie Кишинёв Кишинев Кишинів
  Kishinyov Chisinaului Chisnau
almaty: Alma-Ata Almaata Ałmaty Алматы Алмати Алма-Ата Almati Amalty / Almaz
gdansk: Danzig Gdańsk Gdańsku Gdańska Gdańskiem Dantzig Гданьск Гданськ Gdnask Gdansk-based /
  Gdynia
vilnius: Wilno Wilnie Wilna Vilna Вильнюс Вільнюс Вильно Vilniaus Vilniuje Vilinius
lviv: Lvov Lwów Lwowie Lwowa Lemberg Lviv's Lwiw Львів Львові Львова Львов Львове Léopol
  Lviv-based / live Liv Levi
zelensky: Zelenskyy Zelenskiy Zelenskyi Zelenski Selenskyj Selenskij Zełenski Zełenskiego
  Zelenskiego Zełenskim Zelensky's Zelenskyy's Zelenskyj Zelenského Zelenskij Zelenskyï
  Зеленський Зеленського Зеленському Зеленский Зеленского Зеленским Zelesnky / Zelenska
  Zelenskaya Зеленська Zielinski Zelene Zelenyi Zeleny Zelenko
zelenskyy: Zelensky Зеленського / Zelenska Zelenskaya Зеленська
navalny: Navalnyy Navalni Nawalny Nawalnego Nawalnym Nawalnyj Navalnij Navalnyi Navalny's
  Навальный Навального Навальний Навальним / Navalnaya Nawalna Навальная NavalNews naval
navalnyy: / Navalnaya Nawalna
navalnaya: / Navalnyy Навальный
shoigu: Shoygu Schoigu Choïgou Szojgu Шойгу Shoigu's Shogiu / shogun shochu Shogi
prigozhin: Prigoschin Prigojine Prigożyn Prigożyna Prigozhyn Prigozhin's Пригожин Пригожина
  Пригожиным Prigozin / Prigogine
kyiv: Kiev Kiew Kijów Kijowie Kyjiw Київ Києві Киев Киеве / Kiel Kivu
luhansk: Lugansk Luhańsk Ługańsk Luhanskem Луганськ Луганске / Yugansk Lugano
sikorski: Sikorskiego Sikorskim Сікорський / Syrskyi
syrskyi: Syrsky Syrskiy Syrski Syrskiego Сирський Сырский / Sikorski Siverskyi
peskov: Pieskow Peskow Песков / Pisky
tehran: Teheran Téhéran Teheranie Тегеран / Tigrayans
kursk: Koursk Kursku Курск / Kuusk
avdiivka: Avdeyevka Awdijiwka Awdijiwce Авдіївка / Nadiivka
mykolaiv: Nikolaev Mikołajów Mykolajiw Миколаїв / Mykolaivka Mykolaj
pokrovsk: Pokrowsk Pokrowsku Покровськ / Pokrovka
italy: Italien Włochy / Vitaliy Vitaly
seoul: Seul / Juul
"""


def pairs() -> list[tuple[str, str, str]]:
    """:data:`PAIRS` as (term, token, label) rows: label "1" for a name, "0" for a look-alike."""
    rows = []
    for entry in PAIRS.replace("\n  ", " ").strip().splitlines():
        term, _, words = entry.partition(":")
        names, _, others = words.partition(" / ")
        rows += [(term, w, "1") for w in names.split()]
        rows += [(term, w, "0") for w in others.split()]
    return rows


def score_pairs(verbose: bool = False) -> dict[str, list[int]]:
    """Per term: [taken right, taken wrong, missed, refused right], as ``make eval`` counts."""
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for term, token, label in pairs():
        # The title is the token alone: any hit is on it (or on a part of it, "Lviv-based").
        taken = match_query(f"{term}~", Article(title=token)) is not None
        c = out[term]
        if taken:
            c[0 if label == "1" else 1] += 1
        else:
            c[2 if label == "1" else 3] += 1
        if verbose and taken != (label == "1"):
            print(f"  {'took' if taken else 'missed'} {term}~ {token!r}")
    return out


def corpus_words() -> tuple[dict[str, Counter[str]], dict[str, int]] | None:
    """Every key of the corpora's titles and texts: its forms as written, and how many of them
    stand alone (not a compound's whole, which a fuzzy verdict does not take); None without
    the corpora."""
    files = sorted(CORPORA.glob("*.jsonl")) if CORPORA.is_dir() else []
    if not files:
        return None
    forms: dict[str, Counter[str]] = defaultdict(Counter)
    alone: Counter[str] = Counter()
    for path in files:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                for text in (rec.get("title") or "", rec.get("text") or ""):
                    for tok in tokenize(text):
                        forms[tok.key][text[tok.start:tok.end]] += 1
                        if tok.pos == tok.last:
                            alone[tok.key] += 1
    return forms, alone


def scan(forms: dict[str, Counter[str]], alone: dict[str, int]
         ) -> dict[str, list[tuple[str, str, int]]]:
    """Per term: (word, verdict kind, occurrences) of every word ``term~`` takes."""
    aliases = shipped_aliases()
    vocab = Vocabulary(sorted(forms))
    out: dict[str, list[tuple[str, str, int]]] = {}
    for term in TERMS:
        found = []
        for word in vocab.matching(term, DEFAULT_THRESHOLD, aliases):
            verdict = compare(term, word, DEFAULT_THRESHOLD, aliases)
            assert verdict is not None
            n = alone.get(word, 0) if verdict.kind == "fuzzy" else sum(forms[word].values())
            if n and word != term:
                found.append((word, verdict.kind, n))
        out[term] = sorted(found, key=lambda f: -f[2])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="list every word taken and every pair wrong")
    args = ap.parse_args(argv)
    words = corpus_words()
    found: dict[str, list[tuple[str, str, int]]] = {}
    if words is None:
        print(f"corpora not found at {CORPORA}: skipping the corpus scan (pairs only)")
    else:
        found = scan(*words)
    scored = score_pairs(args.verbose)
    print("\n`term~` at the default threshold: words other than the term it takes in the corpora"
          " (right / wrong / not judged yet), and the hand-labelled pairs")
    print(f"  {'term':<13} {'words':>5} {'right':>5} {'wrong':>5} {'?':>3} {'uses':>5}"
          f"  {'pairs':>5} {'taken':>5} {'wrong':>5} {'missed':>6}")
    totals = Counter[str]()
    for term in sorted(set(TERMS) | set(scored)):
        judged = JUDGED.get(term, {})
        taken = found.get(term, [])
        right = sum(1 for w, _, _ in taken if judged.get(w) is True)
        wrong = sum(1 for w, _, _ in taken if judged.get(w) is False)
        unknown = len(taken) - right - wrong
        uses = sum(n for _, _, n in taken)
        tp, fp, fn, tn = scored.get(term, [0, 0, 0, 0])
        cols = {"words": len(taken), "right": right, "wrong": wrong, "?": unknown,
                "uses": uses, "pairs": tp + fp + fn + tn, "taken": tp + fp, "pwrong": fp,
                "missed": fn, "tp": tp}
        totals.update(cols)
        corpus = (f"{len(taken):>5} {right:>5} {wrong:>5} {unknown:>3} {uses:>5}"
                  if words is not None and term in TERMS else f"{'':>5} " * 4 + f"{'':>3}")
        print(f"  {term:<13} {corpus}  {tp + fp + fn + tn:>5} {tp + fp:>5} {fp:>5} {fn:>6}")
        if args.verbose or unknown:
            for w, kind, n in taken:
                if args.verbose or w not in judged:
                    verdict = judged.get(w)
                    mark = "not judged" if verdict is None else "right" if verdict else "WRONG"
                    shown = ", ".join(f for f, _ in words[0][w].most_common(2)) if words else w
                    print(f"      {w:<18} {kind:<6} {n:>5}  {mark:<10} {shown}")
    t = totals
    prec = t["tp"] / t["taken"] if t["taken"] else 1.0
    rec = t["tp"] / (t["tp"] + t["missed"]) if t["tp"] + t["missed"] else 1.0
    corpus = (f"{t['words']:>5} {t['right']:>5} {t['wrong']:>5} {t['?']:>3} {t['uses']:>5}"
              if words is not None else f"{'':>5} " * 4 + f"{'':>3}")
    print(f"  {'all':<13} {corpus}  {t['pairs']:>5} {t['taken']:>5} {t['pwrong']:>5}"
          f" {t['missed']:>6}")
    print(f"\npairs: precision {prec:.3f}  recall {rec:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
