"""The check of names nobody tuned for (``bench/match_unseen.py``) loses no ground: its
hand-labelled spellings and look-alikes, and the words its terms take in the shared corpora."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pytest

from ._corpus import REPO


def _unseen() -> ModuleType:
    path = REPO / "bench" / "match_unseen.py"
    spec = importlib.util.spec_from_file_location("match_unseen", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("match_unseen", module)
    spec.loader.exec_module(module)
    return module


def test_the_unseen_pairs_lose_no_ground() -> None:
    """As built: 240 of 271 spellings taken and 30 of 73 look-alikes; with the alias table's
    refusals held for every spelling of a name and the news look-alikes it now lists, 240 and
    2 (Chernykh for chernihiv~, Mykolaj for mykolaiv~)."""
    scored = _unseen().score_pairs()
    tp, fp, fn, tn = (sum(c[i] for c in scored.values()) for i in range(4))
    assert tp + fp + fn + tn == 344
    assert tp >= 240
    assert fp <= 2


def test_no_word_the_corpora_hold_is_taken_that_was_judged_another() -> None:
    module = _unseen()
    words = module.corpus_words()
    if words is None:
        pytest.skip(f"shared corpora not found at {module.CORPORA}")
    found = module.scan(*words)
    wrong = sorted((term, w) for term, taken in found.items() for w, _, _ in taken
                   if module.JUDGED.get(term, {}).get(w) is False)
    # Left as they are: a region's adjective, a demonym, other villages and a surname whose
    # look is a case form or suffix of the name, Vilne, also Vilnius in Yiddish, and the given
    # name Mykola (met in the corpora once words in Markdown underscores were read).
    assert wrong == [("beijing", "beijinger"), ("donetsk", "donetska"),
                     ("kupiansk", "kupiansky"), ("mykolaiv", "mykola"), ("mykolaiv", "mykolaj"),
                     ("pokrovsk", "pokrovsky"), ("seoul", "simul"), ("vilnius", "vilne")]
