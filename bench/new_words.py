"""What judging an article's new words against the fuzzy terms costs (printed, never asserted).

Ingest never meets an article twice, and a ~5 KB news article brings about 15 words the matcher
has not met (names, typos, compounds), each compared with every fuzzy term of the rules once.
This times that step alone (``_FuzzyVocabulary.accepted``, which the C engine asks for the
words it has not judged) on the bench's 300 articles, each article's words that none of the
other corpus articles holds, with the realistic rule sets of ``match_bench.py``, and writes
the answers to a file so that two versions of the code can be compared for equality.

    .venv/bin/python bench/new_words.py [--rules 1000,10000] [--out answers.pickle]
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import match_bench as mb
from realistic_rules import corpus_vocabulary, realistic_rules

from watchers.rules import RuleSet
from watchers.rules.text import FieldText


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", default="1000,10000")
    ap.add_argument("--out", help="write every answer here (a pickle), to compare versions")
    args = ap.parse_args(argv)
    everything = mb.load_all()
    articles = mb.news_articles(everything, 300)
    words, phrases = corpus_vocabulary(articles)
    ids = {a.id for a in articles}
    known: set[str] = set()
    for a in everything:
        if a.id not in ids:
            known.update(FieldText.of(a.title).keys, FieldText.of(a.text).keys)
    batches = []
    for a in articles:
        keys = set(FieldText.of(a.title).keys) | set(FieldText.of(a.text).keys)
        batches.append(sorted(k for k in keys - known if k))
        known |= keys
    count = sum(map(len, batches))
    print(f"{len(batches)} articles, {count / len(batches):.1f} new words an article")
    answers = {}
    for n in (int(x) for x in args.rules.split(",")):
        compiled = RuleSet(realistic_rules(n, words, phrases))._compiled
        vocabulary = getattr(compiled, "_vocabulary", None)
        if vocabulary is None:
            raise SystemExit("the compiled rules have no fuzzy vocabulary (a pure install?)")
        best = float("inf")
        for _ in range(7):
            start = time.process_time()
            out = [vocabulary.accepted(b) for b in batches]
            best = min(best, time.process_time() - start)
        print(f"{n:>6} rules: {best / count * 1e6:5.2f} µs of CPU a new word, "
              f"{best / len(batches) * 1e6:6.1f} µs an article (best of 7)")
        answers[n] = [{k: sorted((t.key, t.threshold) for t in v) for k, v in o.items()}
                      for o in out]
    if args.out:
        Path(args.out).write_bytes(pickle.dumps(answers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
