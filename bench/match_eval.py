"""Precision and recall of fuzzy matching on the labelled evaluation set (``make eval``).

The set lives in ``tests/data/eval``:

- ``pairs.tsv``: a query word and a token, labelled 1 when the token is that word written
  differently (a transliteration, a Cyrillic or foreign-language spelling or a typo) and 0 when
  it is a different word or name (prussia for russia, Kivu for kyiv). Then a kind (category)
  and a split: none for the original 130 pairs, ``dev``, ``holdout`` or ``holdout2`` (see the
  file's comments). A pair counts as predicted when ``word~`` at the default threshold hits the
  token.
- ``probe.tsv``: look-alikes a hostile probe found on cases the pairs did not hold, scored on
  their own (``make eval`` prints them last).
- ``probe2.tsv``: 202 pairs over 123 terms from every region (a fifth at most from Russia and
  Ukraine), built without the matcher or the other sets in view: spellings, other languages'
  names and typos, and real look-alikes (Khomeini for ``khamenei~``, Kyoto for ``tokyo~``),
  scored on their own.
- ``probe3.tsv``: 307 pairs over 166 terms built the same way, later, and scored once before
  and after the cities' names in other languages (``data/cities.json``) that were built
  without it.
- ``probe4.tsv``: 325 pairs over 176 terms built the same way, later still, and scored once
  before and after the countries' short names in other languages (the CLDR's, built without
  it).
- ``probe5.tsv``: 744 pairs over 489 terms built the same way, wider (every region, rivers,
  leaders of some forty countries, organisations' acronyms in other languages, companies; a
  sixteenth from Russia, Ukraine and Belarus), scored once before and after the cities' English
  and former names (built without it, on probes 2 to 4 alone): 0.940 / 0.764 before, 0.941 /
  0.779 after; 0.956 / 0.779 with other languages' common words refused at the typo step
  (built on probes 1 to 4; its one loss here, French "Poutine", made French readings count as
  spellings, so the set is no longer quite unseen).
- ``probe6.tsv``: 952 pairs over 47 terms, names declined in a dozen languages and their
  look-alikes (wives' and other female names, words of those languages), built before the
  declension rule (``variants.declined``) was read: 0.944 / 0.658 as built; the fixes it led
  to were made on it.
- ``sentences.jsonl``: sentences from ``../shared/corpora/articles`` (and a few with typos put
  in, marked ``synthetic``), each with a fuzzy query and the spans it should hit. Scored per
  span: a hit at an expected start is a true positive, any other hit a false positive.

``--rebuild`` regenerates ``sentences.jsonl`` from the corpora with the gold spellings below;
review the diff before committing it. Run from the repo root: ``python bench/match_eval.py``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from watchers.models import Article  # noqa: E402
from watchers.rules import match_query  # noqa: E402
from watchers.rules.text import key  # noqa: E402

EVAL = REPO / "tests" / "data" / "eval"
CORPORA = REPO.parent / "shared" / "corpora" / "articles"

_POSS = r"(?:['\u2019]s)?"

# query → (gold spellings, near-miss words that must not be hit)
GOLD: dict[str, tuple[str, str]] = {
    "kyiv~": (r"Kyiv|Kiev|Київ|Киев", r"Kiel|kiwi"),
    "kharkiv~": (r"Kharkiv|Kharkov|Харків|Харьков", r"Kharkivska"),
    "odesa~": (r"Odesa|Odessa", r"odes"),
    "luhansk~": (r"Luhansk|Lugansk", r"Lansk"),
    "donbas~": (r"Donbas|Donbass|Донбас|Донбасс", r"bass"),
    "lviv~": (r"Lviv|Lvov", r"live|levy|lives"),
    "chernihiv~": (r"Chernihiv|Chernigov", r"Cherkasy"),
    "dnipro~": (r"Dnipro|Dnepr|Dnieper", r"Dnipropetrovsk"),
    "zelensky~": (r"Zelensky|Zelenskyy|Zelenskiy|Zelenskyi", r"Zelenska"),
    "russia~": (r"Russia", r"Prussia|Russian|Russians"),
    "talks~": (r"talks|talk", r"stalks|stalk|tanks|tank|talked|talking"),
    "troops~": (r"troops|troop", r"tropes|trope|troupe|trooper|troopers"),
    "war~": (r"war|wars", r"was|warm|ward|wary"),
    "ukraine~": (r"Ukraine", r"Ukrainian|Ukrainians"),
    "sanctions~": (r"sanctions|sanction", r"sanctioned|sections"),
    "crimea~": (r"Crimea", r"crime|crimes"),
    "putin~": (r"Putin", r"putting"),
    "kremlin~": (r"Kremlin", r"Kremlinology"),
}
# Typos put into real sentences, since the corpora are edited text and have few.
TYPOS: dict[str, list[tuple[str, str]]] = {
    "ukraine~": [("Ukraine", "Ukriane"), ("Ukraine", "Ukrane")],
    "sanctions~": [("sanctions", "sanctoins"), ("sanctions", "sanctons")],
    "zelensky~": [("Zelensky", "Zelesnky"), ("Zelensky", "Zelenksy")],
    "russia~": [("Russia", "Rusia"), ("Russia", "Russsia")],
    "kremlin~": [("Kremlin", "Kremiln")],
    "putin~": [("Putin", "Puitn")],
}
# Near misses and spellings the corpora lack, written for the set (marked synthetic).
HANDMADE: list[tuple[str, str]] = [
    ("russia~", "Frederick the Great ruled Prussia from Potsdam, far from Russia."),
    ("russia~", "Historians of Prussia and of East Prussia met in Berlin."),
    ("talks~", "The heron stalks fish in the shallows while the diplomats hold talks."),
    ("talks~", "Tanks rolled past the ministry; no talks were planned."),
    ("troops~", "The film leans on tired tropes about troops coming home."),
    ("troops~", "A theatre troupe entertained the troops near the front."),
    ("war~", "It was warm in the ward, and nobody talked of the war."),
    ("lviv~", "Refugees arrived in Lvov, as older maps still call Lviv."),
    ("kyiv~", "Київ — столиця України, а Киев — російське написання."),
    ("kyiv~", "Delegations flew to Kiel and then on to Kyiv."),
    ("zelensky~", "Olena Zelenska met Volodymyr Zelensky in Kyiv."),
    ("crimea~", "Crime rose in Crimea last year, officials said."),
    ("odesa~", "Poets wrote odes to Odesa and to Odessa's harbour."),
    ("kharkiv~", "Харків and Харьков are the same city, Kharkiv."),
    ("donbas~", "The Donbass region, or Donbas, and Донбас in Ukrainian."),
    ("putin~", "Putting pressure on Putin, the leaders met in Brussels."),
]
PER_SPELLING = 6


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, other: Counts) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.tn += other.tn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def _sentences(text: str) -> Iterator[str]:
    for s in re.split(r"(?<=[.!?])\s+|\n+", text):
        s = s.strip()
        if 30 < len(s) < 320:
            yield s


def _word_re(alternatives: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w)(?:{alternatives}){_POSS}(?!\w)", re.IGNORECASE)


def expected_spans(query: str, text: str) -> list[list[object]]:
    gold = _word_re(GOLD[query][0])
    return [[m.start(), m.end(), m.group()] for m in gold.finditer(text)]


def rebuild() -> int:
    files = sorted(CORPORA.glob("*.jsonl")) if CORPORA.is_dir() else []
    if not files:
        print(f"no corpora at {CORPORA}", file=sys.stderr)
        return 2
    pool: list[tuple[str, str]] = []
    for path in files:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                for field in ("title", "text"):
                    for s in _sentences(rec.get(field) or ""):
                        pool.append((f"{path.stem}:{rec['id']}:{field}", s))
    records: list[dict[str, object]] = []
    seen: set[tuple[str, str]] = set()

    def take(query: str, source: str, text: str, synthetic: bool = False) -> None:
        if (query, text) in seen:
            return
        seen.add((query, text))
        records.append(
            {
                "query": query,
                "source": source,
                "synthetic": synthetic,
                "text": text,
                "expected": expected_spans(query, text),
            }
        )

    for query, (gold, near) in GOLD.items():
        for alt in [*gold.split("|"), *near.split("|")]:
            rx = _word_re(alt)
            found = [(src, s) for src, s in pool if rx.search(s)]
            # Spread the picks over the corpus rather than taking the first few articles.
            step = max(1, len(found) // PER_SPELLING)
            for src, s in found[::step][:PER_SPELLING]:
                take(query, src, s)
        for original, typo in TYPOS.get(query, []):
            rx = re.compile(rf"\b{original}\b")
            found = [(src, s) for src, s in pool if rx.search(s)]
            step = max(1, len(found) // 3)
            for src, s in found[::step][:3]:
                take(query, src, rx.sub(typo, s, count=1), synthetic=True)
    for query, text in HANDMADE:
        take(query, "handmade", text, synthetic=True)
    # Typos are not in GOLD's spellings, so their expected spans are added here.
    for rec in records:
        if rec["synthetic"]:
            text = str(rec["text"])
            spans = rec["expected"]
            assert isinstance(spans, list)
            for _, typo in TYPOS.get(str(rec["query"]), []):
                for m in _word_re(re.escape(typo)).finditer(text):
                    spans.append([m.start(), m.end(), m.group()])
            spans.sort()
    out = EVAL / "sentences.jsonl"
    with out.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(f"wrote {len(records)} records to {out.relative_to(REPO)}")
    return 0


def eval_pairs(verbose: bool = False, by: str = "kind", name: str = "pairs.tsv"
               ) -> dict[str, Counts]:
    """Counts per kind (``by="kind"``) or per split (``by="split"``) of ``name`` (``pairs.tsv``,
    or ``probe.tsv``: look-alikes a probe found on cases the set did not hold)."""
    if by not in ("kind", "split"):
        raise ValueError(f"eval_pairs groups by 'kind' or 'split', not {by!r}")
    by_kind: dict[str, Counts] = {}
    for line in (EVAL / name).read_text("utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        term, token, label, kind = fields[:4]
        if by == "split":
            kind = fields[4] if len(fields) > 4 else "original"
        m = match_query(f"{term}~", Article(title=token))
        # Keys, not texts: a hit's text leaves out a trailing apostrophe (Melitopol').
        predicted = m is not None and any(key(h.text) == key(token) for h in m.hits)
        c = by_kind.setdefault(kind, Counts())
        if predicted and label == "1":
            c.tp += 1
        elif predicted:
            c.fp += 1
            if verbose:
                print(f"  false positive: {term}~ took {token!r}")
        elif label == "1":
            c.fn += 1
            if verbose:
                print(f"  false negative: {term}~ missed {token!r}")
        else:
            c.tn += 1
    return by_kind


def eval_sentences(verbose: bool = False) -> dict[str, Counts]:
    by_query: dict[str, Counts] = {}
    path = EVAL / "sentences.jsonl"
    for line in path.read_text("utf-8").splitlines():
        rec = json.loads(line)
        query, text = rec["query"], rec["text"]
        expected = {int(s[0]) for s in rec["expected"]}
        m = match_query(query, Article(title="", text=text))
        got = {h.start for h in m.hits} if m is not None else set()
        c = by_query.setdefault(query, Counts())
        c.tp += len(got & expected)
        c.fp += len(got - expected)
        c.fn += len(expected - got)
        if verbose:
            for start in sorted(got - expected):
                word = re.match(r"\w+", text[start:])
                print(f"  false positive: {query} took {word.group() if word else '?'!r}: {text}")
            for start in sorted(expected - got):
                word = re.match(r"\w+", text[start:])
                print(f"  false negative: {query} missed {word.group() if word else '?'!r}: {text}")
    return by_query


def _pair_table(rows: dict[str, Counts], by: str = "kind") -> Counts:
    total = Counts()
    print(f"\nword pairs by {by}: `word~` at the default threshold against one token")
    print(
        f"  {by:<10} {'pairs':>6} {'accepted':>9} {'refused':>8} {'wrong':>6}"
        f" {'precision':>10} {'recall':>7}"
    )
    for name, c in sorted(rows.items()):
        total.add(c)
        n = c.tp + c.fp + c.fn + c.tn
        wrong = c.fp + c.fn
        # A kind with no accepted pair has no precision, one with no positive pair no recall.
        prec = f"{c.precision:.3f}" if c.tp + c.fp else "-"
        rec = f"{c.recall:.3f}" if c.tp + c.fn else "-"
        print(
            f"  {name:<10} {n:>6} {c.tp + c.fp:>9} {c.fn + c.tn:>8} {wrong:>6} {prec:>10} {rec:>7}"
        )
    print(
        f"  {'all':<10} {total.tp + total.fp + total.fn + total.tn:>6}"
        f"   precision {total.precision:.3f}  recall {total.recall:.3f}"
    )
    return total


def _table(title: str, rows: dict[str, Counts]) -> Counts:
    total = Counts()
    print(f"\n{title}")
    print(f"  {'':<14} {'TP':>5} {'FP':>5} {'FN':>5} {'precision':>10} {'recall':>8}")
    for name, c in sorted(rows.items()):
        total.add(c)
        print(f"  {name:<14} {c.tp:>5} {c.fp:>5} {c.fn:>5} {c.precision:>10.3f} {c.recall:>8.3f}")
    print(
        f"  {'all':<14} {total.tp:>5} {total.fp:>5} {total.fn:>5} "
        f"{total.precision:>10.3f} {total.recall:>8.3f}"
    )
    return total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rebuild", action="store_true", help="regenerate sentences.jsonl")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every error")
    args = ap.parse_args(argv)
    if args.rebuild:
        return rebuild()
    pairs = _pair_table(eval_pairs(args.verbose))
    _pair_table(eval_pairs(by="split"), by="split")
    sents = _table("corpus sentences (per expected span)", eval_sentences(args.verbose))
    both = Counts()
    both.add(pairs)
    both.add(sents)
    print(f"\noverall precision {both.precision:.3f}  recall {both.recall:.3f}")
    print("\nunseen look-alikes a probe found (probe.tsv; not in the figures above):", end="")
    _pair_table(eval_pairs(args.verbose, name="probe.tsv"))
    print("\nan unseen set built without the matcher in view, every region (probe2.tsv):",
          end="")
    _pair_table(eval_pairs(args.verbose, name="probe2.tsv"))
    print("\na third, built the same way (probe3.tsv, 307 pairs over 166 terms):", end="")
    _pair_table(eval_pairs(args.verbose, name="probe3.tsv"))
    print("\na fourth, built the same way (probe4.tsv, 325 pairs over 176 terms):", end="")
    _pair_table(eval_pairs(args.verbose, name="probe4.tsv"))
    print("\na fifth, built the same way and wider (probe5.tsv, 744 pairs over 489 terms):",
          end="")
    _pair_table(eval_pairs(args.verbose, name="probe5.tsv"))
    print("\ndeclined names in a dozen languages, built before the rule was read "
          "(probe6.tsv, 952 pairs over 47 terms):", end="")
    _pair_table(eval_pairs(args.verbose, name="probe6.tsv"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
