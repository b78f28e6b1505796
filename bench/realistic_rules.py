"""Rule sets written the way a team writes them: from the corpus's own vocabulary, so they fire.

The generated set in ``match_bench.py`` avoids common words and so rarely fires; real alert rules
name things the news is full of. Here every term is a word ranked 200 to 6,000 by frequency in
the full-text articles themselves (the first 200 are function words: "the", "said", "would"),
phrases are word pairs that occur in the corpus, and the mix is the bench's: about 60% words and
phrases, 25% boolean, 10% fuzzy, 5% regex. At 1,000 rules about 3% fire per ~5 KB article of the
bench (28 on a BBC article, 45 on a scraped page; 287 of 10,000).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from itertools import pairwise

from watchers.models import Article
from watchers.rules import Rule

_WORD = re.compile(r"[A-Za-z]{3,}")
RANKS = (200, 6000)


def corpus_vocabulary(articles: list[Article]) -> tuple[list[str], list[tuple[str, str]]]:
    """Words ranked ``RANKS`` in the articles, and the adjacent pairs of them that occur."""
    counts: Counter[str] = Counter()
    docs = []
    for a in articles:
        words = [w.lower() for w in _WORD.findall(f"{a.title}\n{a.text}")]
        counts.update(words)
        docs.append(words)
    ranked = [w for w, _ in counts.most_common()]
    words = ranked[RANKS[0] : RANKS[1]]
    chosen = set(words)
    pairs: Counter[tuple[str, str]] = Counter()
    for ws in docs:
        pairs.update((a, b) for a, b in pairwise(ws) if a in chosen and b in chosen)
    phrases = [p for p, n in pairs.most_common() if n >= 2]
    return words, phrases


def realistic_rules(
    n: int, words: list[str], phrases: list[tuple[str, str]], seed: int = 3
) -> list[Rule]:
    """``n`` distinct rules: 40% words, 20% phrases, 25% boolean, 10% fuzzy, 5% regex."""
    rng = random.Random(seed)

    def w() -> str:
        return rng.choice(words)

    def ph() -> str:
        a, b = rng.choice(phrases)
        return f'"{a} {b}"'

    seen: set[str] = set()
    rules: list[Rule] = []
    while len(rules) < n:
        r = rng.random()
        if r < 0.40:
            q = w()
        elif r < 0.60:
            q = ph()
        elif r < 0.67:
            q = f"{w()} AND {w()}"
        elif r < 0.72:
            q = f"{w()} OR {w()} OR {ph()}"
        elif r < 0.77:
            q = f"{w()} AND ({w()} OR {w()}) -{w()}"
        elif r < 0.82:
            q = f"{w()} NEAR/5 {w()}"
        elif r < 0.85:
            q = f"{ph()} AND NOT {w()}"
        elif r < 0.95:
            q = f"{w()}~" if rng.random() < 0.7 else f"{w()}~ AND {w()}"
        else:
            a, b = w(), w()
            q = rng.choice([f"/\\b{a}\\w*/", f"/{a}s? (and|or) {b}/", f"/{a}\\W+{b}/"])
        if q not in seen:
            seen.add(q)
            rules.append(Rule(name=f"q{len(rules):05d}", query=q))
    return rules
