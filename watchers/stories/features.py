"""What an article or a story is recognised by: weighted stems of its title and lead.

A :class:`Signature` is a tuple of *exemplars*; an exemplar is one article's weighted terms
(stem → weight). An article's signature has one exemplar; a story's keeps its first article's
and its most recent ones (at most :data:`MAX_EXEMPLARS`), so matching a story is matching its
closest exemplar (single link over a bounded set), and persisting one is a short JSON text.

Invariants:

- :func:`signature` is pure and deterministic: same title and text, same signature; no I/O
  beyond wordfreq's table, loaded once.
- Terms are the rule engine's folded keys (:func:`watchers.rules.text.tokenize`), cut to a
  prefix of :data:`STEM` characters so that inflections meet (``elected``/``election`` do not,
  ``ukraine``/``ukrainian`` do); numbers are kept whole.
- A term's weight grows with its rarity in English (wordfreq zipf), so names and rare words
  decide; words common enough to be grammar weigh nothing and are dropped. Numbers weigh as
  rare words (a toll, a date, a score is what tells two events apart); years weigh little.
- A term found only in the lead (not the title) has a negative weight in the exemplar: its
  weight is the absolute value, and the sign says the title did not name it.
- ``Signature.load(sig.dump()) == sig``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache

from watchers.rules.text import tokenize
from watchers.rules.variants import _zipf

__all__ = [
    "ACTOR_MARK",
    "EVENT_MARK",
    "MAX_EXEMPLARS",
    "STEM",
    "Exemplar",
    "Signature",
    "signature",
    "term_weight",
]

STEM = 6
MAX_EXEMPLARS = 6
# Words at least this common (zipf) carry no identity ("the", "after", "new", "says").
_STOP_ZIPF = 5.6
# Weight = _TOP - zipf, clamped: a word seen once in a million words weighs ~3.5, a name
# wordfreq does not know weighs _MAX.
_TOP = 8.5
_MAX = 6.0
_MIN = 0.4
_NUMBER = 3.5
_YEAR = 1.0
_LEAD_WORDS = 40
_LEAD_FACTOR = 0.5
_PRECISION = 3
_YEAR_RE = re.compile(r"(?:19|20)\d\d")
# Words that say nothing of which event it is, though wordfreq finds them rare enough:
# outlet furniture and headline boilerplate.
_NOISE = frozenset(
    """
    exclusive update updated live video watch breaking report reports reported opinion analysis
    explainer photos photo podcast newsletter read via ap reuters afp bbc cnn ap news
    says say said saying tells told claims claimed according reportedly sources source
    amid after over new first could would will may might
    """.split()  # noqa: SIM905
)

Exemplar = tuple[tuple[str, float], ...]

# Marks are weightless terms: what kind of event a headline reports and who acts in it. Two
# reports of one topic that name different kinds of event ("elected" / "resigns") or different
# acting countries ("US evacuates" / "Russia evacuates") are different stories however many
# names they share. Keys are the rule engine's folded keys (plural folded).
EVENT_MARK = "#"
ACTOR_MARK = "@"
_EVENTS: dict[str, str] = {}
for _cls, _words in {
    "elect": "elect elected elects reelected wins win won victory sworn inaugurated appointed",
    "resign": "resign resigns resigned resignation quit quits steps step ousted ouster sacked "
              "fired dismissed impeached",
    "die": "die dy died dead death killed kill killing",
    "arrest": "arrest arrested detained detain detains detention",
    "charge": "charged charge indicted indictment indicts",
    "plead": "plead pleads pleaded pleading plea",
    "convict": "convicted convict guilty verdict",
    "sentence": "sentenced sentence sentencing jailed",
    "acquit": "acquitted acquit cleared",
    "release": "released release freed free frees",
    "reject": "reject rejects rejected block blocks blocked veto vetoed vetoes denies denied",
    "approve": "approve approves approved pass passes passed passe signs signed",
    "sue": "sue sues sued lawsuit",
    "rise": "rise rises rose surge surges surged soar soars soared jump jumps jumped",
    "fall": "fall falls fell drop drops dropped plunge plunges plunged slump slumps sink",
    "delay": "delay delays delayed postpone postpones postponed",
    "cancel": "cancel cancels cancelled canceled scrap scraps scrapped",
    "launch": "launch launches launched unveil unveils unveiled",
}.items():
    for _w in _words.split():
        _EVENTS[_w] = _cls
# Counts spelt out read as digits: "eight-year-old" and "8-year-old" report one event.
_NUMBER_WORDS = {w: str(n) for n, w in enumerate((
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty"))}
# Acting countries: the first one a headline names. Demonyms read as their country.
_ACTORS: dict[str, str] = {}
for _country, _names in {
    "us": "us usa america american biden washington pentagon",
    "uk": "uk britain british england english london",
    "russia": "russia russian kremlin moscow putin",
    "ukraine": "ukraine ukrainian kyiv kiev zelensky zelenskyy",
    "china": "china chinese beijing",
    "eu": "eu european brussels",
    "germany": "germany german berlin",
    "france": "france french paris macron",
    "japan": "japan japanese tokyo",
    "india": "india indian delhi",
    "israel": "israel israeli",
    "iran": "iran iranian tehran",
    "canada": "canada canadian ottawa",
    "australia": "australia australian",
    "taiwan": "taiwan taiwanese",
    "turkey": "turkey turkish ankara erdogan",
    "poland": "poland polish warsaw",
    "belarus": "belarus belarusian minsk lukashenko",
    "nato": "nato",
    "un": "un",
    "netherlands": "netherlands dutch amsterdam rotterdam",
    "austria": "austria austrian vienna",
    "sweden": "sweden swedish stockholm",
    "norway": "norway norwegian",
    "italy": "italy italian rome",
    "spain": "spain spanish madrid",
    "brazil": "brazil brazilian bolsonaro",
    "mexico": "mexico mexican",
    "korea": "korea korean seoul pyongyang",
    "pakistan": "pakistan pakistani",
    "afghanistan": "afghanistan afghan taliban kabul",
    "syria": "syria syrian",
    "iraq": "iraq iraqi",
    "saudi": "saudi riyadh",
    "hungary": "hungary hungarian orban",
    "kazakhstan": "kazakhstan kazakh",
    "ethiopia": "ethiopia ethiopian",
    "southafrica": "african africa",
}.items():
    for _w in _names.split():
        _ACTORS[_w] = _country


def term_weight(norm: str) -> float:
    """How much a word (folded, plural kept) says about which event a text reports; 0 = none."""
    if norm.isdigit():
        if len(norm) == 4 and _YEAR_RE.fullmatch(norm):
            return _YEAR
        return _NUMBER if norm not in ("0", "1") else 0.0
    if norm in _NOISE or len(norm) < 2:
        return 0.0
    z = _zipf(norm)
    if z >= _STOP_ZIPF:
        return 0.0
    return round(min(_MAX, max(_MIN, _TOP - z)), _PRECISION)


def _stem(key: str) -> str:
    return key if key[:1].isdigit() else key[:STEM]


@lru_cache(maxsize=200_000)
def _word(key: str, norm: str) -> tuple[str, float, str | None, str | None]:
    """A word's stem, weight, event class and country (cached: news repeats its words)."""
    if norm in _NUMBER_WORDS and norm not in ("zero", "one"):
        key = norm = _NUMBER_WORDS[norm]
    return (_stem(key), term_weight(norm), _EVENTS.get(key) or _EVENTS.get(norm),
            _ACTORS.get(key) or _ACTORS.get(norm))


def _terms(text: str, factor: float, into: dict[str, float], limit: int | None = None,
           marks: bool = False) -> None:
    actor = False
    inside = (-1, -1)  # positions of the current compound's parts after its first
    for n, tok in enumerate(tokenize(text)):
        if limit is not None and n >= limit:
            break
        if tok.last != tok.pos:
            # A hyphenated compound: its parts follow and stand for it. Counting the joined
            # form too would make "covid19" the rarest term of every COVID-19 headline.
            inside = (tok.pos + 1, tok.last)
            continue
        if inside[0] <= tok.pos <= inside[1] and tok.key.isdigit():
            # A number after a hyphen names something ("COVID-19", "F-35"); it is not a count.
            continue
        stem, w, event, country = _word(tok.key, tok.norm)
        if marks:
            if event is not None:
                into[EVENT_MARK + event] = 0.0
            if country is not None and not actor:
                into[ACTOR_MARK + country] = 0.0
                actor = True
        if not w:
            continue
        if factor != 1.0:
            # A lead-only term is stored negated: the title must carry part of the evidence.
            w = -round(w * factor, _PRECISION)
            if stem not in into or (into[stem] < 0 and into[stem] > w):
                into[stem] = w
        elif into.get(stem, 0.0) < w:
            into[stem] = w


@dataclass(frozen=True)
class Signature:
    """Exemplars (each a sorted tuple of (stem, weight)); the first is the story's founder."""

    exemplars: tuple[Exemplar, ...]

    def dump(self) -> str:
        return json.dumps([[list(t) for t in ex] for ex in self.exemplars],
                          separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def load(cls, text: str) -> Signature:
        try:
            raw = json.loads(text)
            exemplars = tuple(
                tuple((str(s), float(w)) for s, w in ex) for ex in raw
            )
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not a story signature: {text[:80]!r}") from exc
        if not isinstance(raw, list):
            raise ValueError(f"not a story signature: {text[:80]!r}")
        return cls(exemplars)

    def terms(self) -> Iterator[str]:
        """Every distinct weighted stem over the exemplars (marks left out)."""
        seen: set[str] = set()
        for ex in self.exemplars:
            for s, w in ex:
                if w and s not in seen:
                    seen.add(s)
                    yield s

    def merged(self, other: Signature, limit: int = MAX_EXEMPLARS) -> Signature:
        """This story's signature having learnt ``other``: founder kept, newest exemplars after."""
        exemplars = list(self.exemplars)
        for ex in other.exemplars:
            if ex in exemplars or not ex:
                continue
            exemplars.append(ex)
        if len(exemplars) > limit:
            exemplars = exemplars[:1] + exemplars[len(exemplars) - (limit - 1):]
        return Signature(tuple(exemplars))


def _exemplar(weights: Mapping[str, float]) -> Exemplar:
    return tuple(sorted(weights.items()))


def signature(title: str, text: str = "") -> Signature:
    """The signature of an article: its title's terms, and its lead's at half weight."""
    weights: dict[str, float] = {}
    # The title first, so a word in both is a title term at full weight.
    _terms(title, 1.0, weights, marks=True)
    if text:
        _terms(text[:600], _LEAD_FACTOR, weights, limit=_LEAD_WORDS)
    ex = _exemplar(weights)
    return Signature((ex,) if ex else ())

