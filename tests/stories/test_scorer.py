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


def test_a_words_kind_of_event_is_read_with_the_word_after_it() -> None:
    # "passes away" is a death: the obituary told both ways is one story, where "passes" read
    # as a vote vetoed it as another kind of event.
    assert "#die" in _marks("Legendary Indian singer Lata Mangeshkar passes away at 92")
    away = signature("Legendary Indian singer Lata Mangeshkar passes away at 92").exemplars[0]
    dies = signature("Legendary Singer Lata Mangeshkar, India's Nightingale, Dies At 92")
    assert same_story_score(away, dies.exemplars[0], timedelta(hours=7)) > 0
    # "steps down" resigns; "steps up" and "a first step" are no resignation ...
    assert "#resign" in _marks("Sebastian Kurz steps down as Austrian chancellor")
    assert "#resign" not in _marks("Germany steps up arms deliveries to Ukraine")
    assert "#resign" not in _marks("Putin takes first step toward talks with Kyiv")
    # ... "signs of" signs nothing, and a bill passed or signed is still approved.
    assert "#approve" not in _marks("Omicron wave shows signs of slowing in South Africa")
    assert "#approve" in _marks("Senate passes defence bill")
    assert "#approve" in _marks("Biden signs infrastructure bill into law")
    # Missiles fired are no dismissal: the same barrage told with "fired" and with "launches"
    # is one story; a dismissal is still one.
    fired = signature("Russia fired 30 missiles at Kyiv overnight, Ukraine says").exemplars[0]
    launches = signature("Russia launches 30 missiles at Kyiv in overnight barrage")
    assert same_story_score(fired, launches.exemplars[0], timedelta(hours=2)) > 0
    assert "#resign" not in _marks("Police fired tear gas at protesters in Almaty")
    assert "#resign" not in _marks("Gunmen fired on a convoy near Kabul")
    assert "#resign" in _marks("Tucker Carlson fired by Fox News")
    # Claims dismissed are denied (no one is dismissed); "in charge" charges no one.
    dismissed = signature("Kremlin dismissed claims of troop buildup near Ukraine").exemplars[0]
    denies = signature("Kremlin denies troop buildup near Ukraine border").exemplars[0]
    assert same_story_score(dismissed, denies, timedelta(hours=2)) > 0
    assert "#resign" in _marks("Putin dismissed defence minister Shoigu")
    assert "#charge" not in _marks("Zelensky puts general in charge of Donbas defence")
    assert "#charge" in _marks("Prosecutors charge suspect in Kyiv attack")
    # Deaths that pass a number approve nothing; a season, a threat or a bill is no event.
    assert "#approve" not in _marks("Russian military deaths pass 36,000, Ukraine says")
    assert "#fall" not in _marks("Ukraine to hold elections this fall, Zelensky says")
    assert "#fall" in _marks("Ruble falls 10% against the dollar")
    assert "#die" not in _marks("Election officials receive death threats in Georgia")
    assert "#die" not in _marks("McConnell vows to kill bipartisan China bill")
    assert "#die" in _marks("Russian strike kills 14 in Vinnytsia")
    assert "#release" not in _marks("Poland offers free transit to Ukrainian refugees")
    assert "#release" in _marks("Russia frees US marine in prisoner swap")
    # "Cleared for" use is an approval, "cleared of" a charge an acquittal.
    cleared = signature("Pfizer vaccine cleared for children aged 5 to 11").exemplars[0]
    approves = signature("FDA approves Pfizer vaccine for children aged 5 to 11").exemplars[0]
    assert same_story_score(cleared, approves, timedelta(hours=2)) > 0
    assert "#acquit" in _marks("Former officer cleared of murder in shooting")
    assert not {"#acquit", "#approve"} & _marks("Police cleared the protest camp in Ottawa")
    # The C loop reads only headlines with no such word: both loops give every mark above.
    titles = ("Singer passes away at 92", "PM steps down", "Company steps up output",
              "Biden signs bill", "Stocks show signs of life", "Stocks plunge on recovery fears",
              "Russia fired 30 missiles at Kyiv", "CEO fired", "Drug cleared for use",
              "Officer cleared of murder", "Road cleared", "Kremlin dismissed claims",
              "Minister dismissed", "General in charge", "Charges dropped", "Deaths pass 100",
              "Talks this fall", "Death threats sent", "Plan to kill the bill", "Gunmen kill 5")
    for title in titles:
        assert signature(title) == _pure_signature(title), title


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
