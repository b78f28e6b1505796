"""The pair scorer and the matcher-token signature, against their plain definitions."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from itertools import islice

import pytest

from tests.conftest import REPO, corpora_or_skip
from watchers.models import Article
from watchers.rules.matcher import Analysis
from watchers.stories import Signature, same_story_score, signature, signature_from
from watchers.stories import index as ix
from watchers.stories.features import lead

LABELLED = REPO / "tests" / "data" / "stories" / "reddit_labelled.jsonl"


def _analysed(title: str, text: str, read: tuple[str, ...] = ()) -> Analysis:
    an = Analysis(Article(source="t", title=title, text=text, url=None, guid="g"))
    for name in read:
        an.field(name)  # as the matcher leaves it after its rules read these fields
    return an


HARD = [
    ("COVID-19 spike as 8-year-old dies", ""),
    ("", "Only a lead, no title: Zelensky meets Macron in Kyiv."),
    ("Ukraine's F-35 talks", "word " * 150 + "Zelenskyy-Macron summit " + "x" * 700),
    ("Long lead cut inside a word", "a" * 598 + " Hesseman Cincinnati WKRP"),
    ("Cut on a hyphen", "z " * 297 + "COVID-19 North-Korea " * 20),
    ("Accents and marks", "Café Zürich naïve coöperate résumé " * 40),
]


@pytest.mark.parametrize(("title", "text"), HARD)
@pytest.mark.parametrize("read", [(), ("title",), ("title", "text")])
def test_signature_from_matches_signature(title: str, text: str, read: tuple[str, ...]) -> None:
    assert signature_from(_analysed(title, text, read)) == signature(title, text)


def test_lead_never_cuts_a_word() -> None:
    text = "a" * 598 + " Hesseman Cincinnati"
    assert lead(text) == "a" * 598
    assert lead("short") == "short"
    assert lead("x" * 700) == "x" * 600  # no space at all: a hard cut


def test_signature_from_matches_signature_on_corpus_articles() -> None:
    path = corpora_or_skip() / "articles" / "web_scraped_2026_ukraine_world.jsonl"
    if not path.is_file():
        pytest.skip(f"no corpus at {path}")
    checked = 0
    with path.open(encoding="utf-8") as fh:
        for line in islice(fh, 400):
            r = json.loads(line)
            title, text = r.get("title") or "", r.get("text") or ""
            assert signature_from(_analysed(title, text, ("title", "text"))) == \
                signature(title, text), title
            checked += 1
    assert checked > 0


def _labelled_pairs() -> list[tuple[ix._Ex, ix._Ex, float]]:
    if not LABELLED.is_file():
        pytest.skip(f"no labelled set at {LABELLED}")
    with LABELLED.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in islice(fh, 120)]
    exs = [ix._Ex(signature(r["title"]).exemplars[0]) for r in rows]
    return [(a, b, float(h)) for i, a in enumerate(exs) for h, b in enumerate(exs[i + 1:i + 8])]


def test_logit_is_the_model_over_features() -> None:
    scored = vetoed = subject = 0
    found = ix.FEATURES.index("subject_found")
    for a, b, gap in _labelled_pairs():
        z = ix._logit(a, b, gap)
        f = ix.features(a, b, gap)
        never = len(a.title & b.title) < ix._MIN_TITLE or (
            ix._VETO and (f[ix._EVENT_CONFLICT] or f[ix._ACTOR_CONFLICT]))
        if never:
            assert z == ix._NEVER
            vetoed += 1
            continue
        expected = ix._BIAS + sum(c * x for c, x in zip(ix._COEF, f, strict=True))
        assert math.isclose(z, expected, abs_tol=1e-9)
        scored += 1
        subject += f[found] > 0
    assert scored > 20 and vetoed > 20 and subject > 5  # every branch exercised


def test_score_falls_with_time_and_rises_with_shared_names() -> None:
    a = signature("Howard Hesseman, star of 'WKRP in Cincinnati,' dies at 81").exemplars[0]
    b = signature("Howard Hesseman, Dr. Johnny Fever on WKRP, dies at 81").exemplars[0]
    c = signature("Howard Hesseman to star in Cincinnati revival").exemplars[0]
    assert same_story_score(a, b) > 0
    assert same_story_score(a, b, timedelta(hours=1)) > same_story_score(a, b, timedelta(days=2))
    assert same_story_score(a, b) > same_story_score(a, c)
    assert Signature.load(Signature((a, b)).dump()).exemplars == (a, b)


def _marks(title: str) -> set[str]:
    return {t for t, w in signature(title).exemplars[0] if w == 0}


def test_a_speaker_is_not_the_acting_country() -> None:
    assert "@russia" in _marks("Ukraine says Russian forces shelled Kharkiv train station")
    assert "@russia" in _marks("Kyiv Independent: Russian troops shell Kharkiv train station")
    assert "@ukraine" in _marks("Ukraine retakes Kharkiv train station")
    # A speaker prefix added to the same event is no veto ...
    a = signature("Ukraine says Russian forces shelled Kharkiv train station").exemplars[0]
    b = signature("Russian forces shelled Kharkiv train station, killing 12").exemplars[0]
    assert same_story_score(a, b) > 0
    # ... nor is a country one side describes someone by, when the other names it as actor ...
    griner = signature("U.S. basketball star Griner sentenced to 9 years by Russian court")
    court = signature("Russian court sentences Griner to 9 years in prison")
    assert same_story_score(griner.exemplars[0], court.exemplars[0]) > 0
    # ... but two countries doing the same thing, neither naming the other, still are two events.
    us = signature("US evacuates embassy in Kyiv as invasion fears grow").exemplars[0]
    ru = signature("Russia evacuates embassy in Kyiv as invasion fears grow").exemplars[0]
    assert same_story_score(us, ru) == ix._NEVER - ix._FOUNDER


# (headline, event mark, whether the headline has it): a word's kind of event read with the
# words around it. A wrong kind vetoes a story: "passes" read as a vote made "... passes away at
# 92" and "... dies at 92" two kinds of event, never one story.
_MARKS_IN_CONTEXT = [
    ("Legendary Indian singer Lata Mangeshkar passes away at 92", "#die", True),
    ("Legendary Indian singer Lata Mangeshkar passes away at 92", "#approve", False),
    ("Senate passes defence bill", "#approve", True),
    ("Russian military deaths pass 36,000, Ukraine says", "#approve", False),
    ("House passes $1.75 trillion Biden plan that funds universal pre-K", "#approve", True),
    ("Biden signs infrastructure bill into law", "#approve", True),
    ("Omicron wave shows signs of slowing in South Africa", "#approve", False),
    ("Sebastian Kurz steps down as Austrian chancellor", "#resign", True),
    ("Jack Dorsey stepped down as Twitter CEO", "#resign", True),
    ("Police stepped up patrols in Kyiv", "#resign", False),
    ("Germany steps up arms deliveries to Ukraine", "#resign", False),
    ("Putin takes first step toward talks with Kyiv", "#resign", False),
    ("Tucker Carlson fired by Fox News", "#resign", True),
    ("Police fired tear gas at protesters in Almaty", "#resign", False),
    ("Gunmen fired on a convoy near Kabul", "#resign", False),
    ("Putin dismissed defence minister Shoigu", "#resign", True),
    ("Kremlin dismissed claims of troop buildup near Ukraine", "#reject", True),
    ("Prosecutors charge suspect in Kyiv attack", "#charge", True),
    ("Zelensky puts general in charge of Donbas defence", "#charge", False),
    ("Trump aides named in indictment over classified documents", "#charge", True),
    ("Former officer charged with murder in Minneapolis", "#charge", True),
    ("Kazakhstan votes in charged atmosphere after unrest", "#charge", False),
    ("Politically charged trial of opposition leader opens in Minsk", "#charge", False),
    ("Former officer cleared of murder in shooting", "#acquit", True),
    ("Pfizer vaccine cleared for children aged 5 to 11", "#approve", True),
    ("Police cleared the protest camp in Ottawa", "#acquit", False),
    ("Police cleared the protest camp in Ottawa", "#approve", False),
    ("Ruble falls 10% against the dollar", "#fall", True),
    ("Ukraine to hold elections this fall, Zelensky says", "#fall", False),
    ("Russian strike kills 14 in Vinnytsia", "#die", True),
    ("Election officials receive death threats in Georgia", "#die", False),
    ("McConnell vows to kill bipartisan China bill", "#die", False),
    ("Russia frees US marine in prisoner swap", "#release", True),
    ("Poland offers free transit to Ukrainian refugees", "#release", False),
    ("Stocks plunge on recovery fears", "#fall", True),  # no such word: the C loop's
]


@pytest.mark.parametrize(("title", "mark", "has"), _MARKS_IN_CONTEXT)
def test_a_words_kind_of_event_is_read_with_the_words_around_it(title: str, mark: str,
                                                                has: bool) -> None:
    assert (mark in _marks(title)) is has
    # The C loop reads only headlines holding no such word; either way, what Python reads.
    assert signature(title) == _pure_signature(title)


@pytest.mark.parametrize(("one", "other"), [
    ("Legendary Indian singer Lata Mangeshkar passes away at 92",
     "Legendary Singer Lata Mangeshkar, India's Nightingale, Dies At 92"),
    ("Russia fired 30 missiles at Kyiv overnight, Ukraine says",
     "Russia launches 30 missiles at Kyiv in overnight barrage"),
    ("Kremlin dismissed claims of troop buildup near Ukraine",
     "Kremlin denies troop buildup near Ukraine border"),
    ("Pfizer vaccine cleared for children aged 5 to 11",
     "FDA approves Pfizer vaccine for children aged 5 to 11"),
])
def test_one_event_in_words_of_other_kinds_read_alone_is_one_story(one: str, other: str
                                                                    ) -> None:
    a, b = signature(one).exemplars[0], signature(other).exemplars[0]
    assert same_story_score(a, b, timedelta(hours=2)) > 0


def _pure_signature(title: str) -> Signature:
    """``title``'s signature made by the Python loop alone (the specification)."""
    from watchers.stories import features

    saved = features._cterms
    features._cterms = None
    try:
        return signature(title)
    finally:
        features._cterms = saved


def test_the_subject_is_the_first_word_after_a_topic_prefix() -> None:
    assert "^german" in _marks("Covid: Germany puts major restrictions on unvaccinated")
    assert "^austri" in _marks("Austria to go into full lockdown as Covid surges")
    # A long text before a colon is the headline itself, not a topic label.
    assert "^kevin" in _marks("Kevin McCarthy breaks record for longest House speech: 8 hours")


def test_signatures_stored_before_countries_and_subjects_still_score() -> None:
    titles = ("Austria announces fourth national lockdown and compulsory vaccination",
              "Austria imposes mandatory COVID vaccination from February")
    new = [signature(t).exemplars[0] for t in titles]
    old = [tuple((t, w) for t, w in ex if t[0] not in "%^") for ex in new]
    restored = Signature.load(Signature(tuple(old)).dump())
    assert restored.exemplars == tuple(old)
    e = ix._Ex(old[0])
    assert e.subject == "" and e.countries == e.actors == frozenset({"austria"})
    # Without subjects the pair loses that evidence but is scored by the same model.
    gap = timedelta(hours=1)
    assert same_story_score(old[0], old[1], gap) < same_story_score(new[0], new[1], gap)
    assert same_story_score(old[0], old[1], gap) > ix._NEVER
