"""What an article or a story is recognised by: weighted stems of its title.

A :class:`Signature` is a tuple of *exemplars*; an exemplar is one article's weighted terms
(stem → weight). An article's signature has one exemplar; a story's keeps its first article's
and its most recent ones (at most :data:`MAX_EXEMPLARS`), so matching a story is matching its
closest exemplar (a bounded set), and persisting one is a short JSON text.

Invariants:

- :func:`signature` is pure and deterministic: same title and text, same signature; no I/O
  beyond wordfreq's table, loaded once.
- Terms are the rule engine's folded keys (:func:`watchers.rules.text.tokenize`), cut to a
  prefix of :data:`STEM` characters so that inflections meet (``elected``/``election`` do not,
  ``ukraine``/``ukrainian`` do); numbers are kept whole.
- A term's weight grows with its rarity in English (wordfreq zipf), so names and rare words
  decide; words common enough to be grammar weigh nothing and are dropped. Numbers weigh as
  rare words (a toll, an amount, a score is what tells two events apart); years and a day
  after a month's name ("Jan. 6") weigh little.
- Marks are weightless terms (weight 0, never indexed): the kind of event (``#``), the acting
  country (``@``, the first country named that is not a speaker: "Ukraine says ...", "Kyiv
  Independent: ..." name a speaker), every country named (``%``) and the subject (``^``, the
  first weighted word after a short "Topic:" prefix). Signatures stored before ``%`` and ``^``
  existed load and score as before: no country but the actor, no subject evidence.
- :func:`signature_from` (the matcher's tokens) gives exactly what :func:`signature` gives.
- Only the title is read (the lead stands for a missing title). Lead words were tried as
  weaker evidence, but nothing in the labelled set (titles only) can teach their weight and
  scraped pages' leads are mostly site furniture, which merged unrelated pages. Signatures
  persisted by that version hold lead terms with negative weights; the index ignores them.
- ``Signature.load(sig.dump()) == sig``; ``dump`` writes what ``json.dumps`` writes, from
  text cached per exemplar and carried into :meth:`Signature.merged` (not part of the value:
  equality and hash are the exemplars').
- The token loop and an exemplar's JSON have a C twin (``_cstories.c``, optional, off with
  ``NEWSWATCH_PURE``) that gives the same terms and the same text; this module is the
  specification.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from math import isfinite
from sys import intern
from types import ModuleType

from watchers.models import MAX_MATCH_TITLE_CHARS
from watchers.rules.matcher import Analysis
from watchers.rules.text import FieldText, untrack
from watchers.rules.variants import _table_text, _zipf

__all__ = [
    "ACTOR_MARK",
    "COUNTRY_MARK",
    "EVENT_MARK",
    "MAX_EXEMPLARS",
    "STEM",
    "SUBJECT_MARK",
    "Exemplar",
    "Signature",
    "lead",
    "signature",
    "signature_from",
    "signature_of",
    "term_weight",
]

STEM = 6
MAX_EXEMPLARS = 3
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
# The words of a title a signature reads, as _LEAD_WORDS of a lead. Each distinct word costs
# a lookup of its rarity (about 20 µs), and an imported "title" of 1.5 million words took
# 28 s and 620 MB where the same words as its text took half a second. No headline comes near:
# the longest of the Reddit and BBC corpora has 57 words, and a feed's title is cut at 1,000
# characters (about 200 words of prose at most), so every real title is read whole.
_TITLE_WORDS = 300
_LEAD_CHARS = 600
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

# The optional C twin of the token loop and of an exemplar's JSON (watchers/stories/_cstories.c):
# the same terms and the same text as the Python code below, which is the specification.
# NEWSWATCH_PURE set (as for the rule engine's C parts) or the extension missing: Python only.
_CSTORIES: ModuleType | None = None
_cterms: Callable[..., None] | None = None
_cexemplar: Callable[[dict[str, float]], Exemplar] | None = None
_cexemplar_text: Callable[
    [Exemplar, Callable[[str, float], str], dict[float, str], int], str] | None = None
if os.environ.get("NEWSWATCH_PURE", "") in ("", "0"):
    try:
        # By name: the import graph checks (import-linter) see no module file for an extension.
        _CSTORIES = importlib.import_module("watchers.stories._cstories")
    except ImportError:  # not built (no compiler at install)
        pass
    else:
        _cterms = _CSTORIES.terms
        _cexemplar = getattr(_CSTORIES, "exemplar", None)  # None: built before it was added
        _cexemplar_text = _CSTORIES.exemplar_text

_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
# '["stem",' per term, and '["stem",weight]' per weighted term, as Signature.dump writes them:
# terms repeat from article to article.
_HEADS: dict[str, str] = {}
_HEADS_MAX = 50_000
_PAIRS: dict[tuple[str, float], str] = {}
_PAIRS_MAX = 50_000
# repr() of non-zero weights, for the C spelling of an exemplar (weights are rounded: few).
_REPRS: dict[float, str] = {}
_REPRS_MAX = 20_000


def _pair_text(term: str, weight: float) -> str:
    """``["term",weight]`` as ``json.dumps`` spells it."""
    head = _HEADS.get(term)
    if head is None:
        if len(_HEADS) >= _HEADS_MAX:
            _HEADS.clear()
        head = _HEADS[term] = "[" + _JSON.encode(term) + ","
    # json spells a finite float as repr() does; anything else goes through json.
    return head + (float.__repr__(weight) if type(weight) is float and isfinite(weight)
                   else _JSON.encode(weight)) + "]"

# Marks are weightless terms: what kind of event a headline reports and who acts in it. Two
# reports of one topic that name different kinds of event ("elected" / "resigns") or different
# acting countries ("US evacuates" / "Russia evacuates") are different stories however many
# names they share. Keys are the rule engine's folded keys (plural folded).
EVENT_MARK = "#"
ACTOR_MARK = "@"
# Every country a headline names (the actor too): a speaker ("Ukraine says ...") is named but
# does not act, and "US evacuates" / "Russia evacuates" name no country in common.
COUNTRY_MARK = "%"
# The headline's subject: its first weighted term after any "Topic:" prefix (who or what the
# headline is about first; two reports of one event mostly start from the same one).
SUBJECT_MARK = "^"
# Words after a country that make it a speaker, not the actor.
_SPEAKS = frozenset(
    "say said tell told warn warned claim claimed accuse accused".split()  # noqa: SIM905
)
_EVENTS: dict[str, str] = {}
for _cls, _words in {
    "elect": "elect elected elects reelected wins win won victory sworn inaugurated appointed",
    "resign": "resign resigns resigned resignation quit quits steps step stepped stepping "
              "ousted ouster sacked fired dismissed impeached",
    "die": "die dy died dead death killed kill killing",
    "arrest": "arrest arrested detained detain detains detention",
    "charge": "charged charge indicted indictment indicts",
    "plead": "plead pleads pleaded pleading plea",
    "convict": "convicted convict guilty verdict",
    "sentence": "sentenced sentence sentencing jailed",
    "acquit": "acquitted acquit cleared",
    # "free" is mostly the adjective ("free transit", "free of restrictions")
    "release": "released release freed frees",
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
# Words whose kind of event the words after them decide, by the word's own kind (a wrong kind
# vetoes a story: "Lata Mangeshkar passes away at 92" / "... dies at 92" were two, and so were
# "Russia fired 30 missiles at Kyiv" / "Russia launches 30 missiles at Kyiv"). "Passes away" is
# a death, not a vote; "steps down" (or aside) a resignation, where "steps up" and "a first
# step" are none; "signs of" is no signing; "fired" at something, or fired missiles, shots or
# tear gas, is no dismissal, and claims or a case "dismissed" are rejected, not a person; "cleared
# of" a charge is an acquittal, "cleared for" (or to) use an approval, any other clearing
# neither; "in charge" is no charge, nor is a "charged atmosphere" (or a "politically charged"
# one); deaths that "pass" a number approve nothing; "this fall" is
# a season; a "death threat" or "death penalty" kills no one, nor does a plan to "kill" a bill.
_WEAPONS = frozenset(
    """missile rocket shot shell gun bullet drone salvo artillery torpedo projectile tear gas
    flare warning round ballistic cruise munition grenade mortar volley weapon barrage
    warhead""".split()  # noqa: SIM905
)
_AIMED = frozenset("at on upon into back over from across toward towards off".split())  # noqa: SIM905
_DISMISSED = frozenset(
    """claim report allegation accusation fear concern suggestion warning talk idea rumor rumour
    criticism call speculation threat as case lawsuit suit charge appeal motion petition
    complaint""".split()  # noqa: SIM905
)


def _approve(key: str, before: str, after: Sequence[str]) -> str | None:
    nxt = after[0] if after else ""
    if nxt == "away":
        return "die"
    # A count passed ("deaths pass 36,000"), not money ("passes $1.75 trillion plan", whose
    # number comes with its sign: see _terms). Only the keys _CONTEXT_KEYS lists: the C loop
    # reads every other word alone.
    if (key == "sign" and nxt == "of") or (key in ("pass", "passed") and nxt[:1].isdigit()):
        return None
    return "approve"


def _resign(key: str, before: str, after: Sequence[str]) -> str | None:
    nxt = after[0] if after else ""
    if key == "dismissed":
        return "reject" if not _DISMISSED.isdisjoint(after[:2]) else "resign"
    if key == "fired":
        aimed = nxt in _AIMED or not _WEAPONS.isdisjoint(after[:4])
        return None if aimed else "resign"
    return "resign" if key not in _STEPS or nxt in ("down", "aside") else None


def _acquit(key: str, before: str, after: Sequence[str]) -> str | None:
    if key != "cleared":
        return "acquit"
    nxt = after[0] if after else ""
    return "acquit" if nxt == "of" else "approve" if nxt in ("for", "to") else None


# "A charged atmosphere", "politically charged": a mood, no one charged.
_CHARGED_HOW = frozenset(
    "highly politically emotionally racially heavily supercharged".split()  # noqa: SIM905
)
_CHARGED_MOODS = frozenset(
    """atmosphere debate climate environment mood moment issue topic rhetoric campaign session
    meeting election vote race contest exchange""".split()  # noqa: SIM905
)


def _charge(key: str, before: str, after: Sequence[str]) -> str | None:
    # "charge" alone: "named in indictment" is a charge, and the C loop reads it alone.
    if key == "charge" and before == "in":
        return None
    mood = bool(after) and after[0] in _CHARGED_MOODS
    if key == "charged" and (before in _CHARGED_HOW or mood):
        return None
    return "charge"


_NOT_DEATHS = frozenset("threat penalty row sentence certificate knell wish trap".split())  # noqa: SIM905
_KILLED_PLANS = frozenset(
    "bill deal plan agenda measure legislation proposal filibuster law".split()  # noqa: SIM905
)


def _die(key: str, before: str, after: Sequence[str]) -> str | None:
    if key == "death" and after[:1] and after[0] in _NOT_DEATHS:
        return None
    if key == "kill" and not _KILLED_PLANS.isdisjoint(after[:3]):
        return None
    return "die"


def _fall(key: str, before: str, after: Sequence[str]) -> str | None:
    return None if key == "fall" and before in ("this", "last", "next", "in") else "fall"


# Signs an amount of money starts with: "passes $1.75 trillion plan" is a vote (see _approve).
_MONEY = frozenset("$£€¥₹")
_IN_CONTEXT: dict[str, Callable[[str, str, Sequence[str]], str | None]] = {
    "approve": _approve, "resign": _resign, "acquit": _acquit, "charge": _charge, "die": _die,
    "fall": _fall}
# A headline holding none of these keys ("passes away", "steps", "signs" fold to them) is read
# by the C loop, which does not look ahead; one holding any, by the Python loop.
_STEPS = frozenset(("step", "stepped", "stepping"))
_CONTEXT_KEYS = frozenset(("away", *_STEPS, "sign", "fired", "cleared", "dismissed", "charge",
                           "charged", "pass", "passed", "death", "kill", "fall"))
# Counts spelt out read as digits: "eight-year-old" and "8-year-old" report one event.
_NUMBER_WORDS = {w: str(n) for n, w in enumerate((
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty"))}
_MONTHS = frozenset(
    """jan feb mar apr jun jul aug sep sept oct nov dec january february march april may june
    july august september october november december""".split()  # noqa: SIM905
)
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
# Every other country (the keys of rules/data/exonyms.toml: one word each, as the rules fold it),
# each its own actor: "Plane crash in Nepal kills 72" and "... in Brazil kills 61" were one
# story. Left out, names that are everyday words or people's and states' names too (chad,
# georgia, guinea, jersey, jordan, reunion); tests/stories/test_countries.py keeps the list
# equal to the table's keys less those.
_OTHER_COUNTRIES = """
    albania algeria andorra angola anguilla antarctica argentina armenia aruba
    azerbaijan bahama bahrain bangladesh barbado belgium belize benin bermuda bhutan
    bolivia botswana brunei bulgaria burundi cambodia cameroon chile colombia comoro
    congo croatia cuba curacao cyprus czechia denmark djibouti dominica ecuador egypt
    eritrea estonia eswatini fiji finland gabon gambia ghana gibraltar greece greenland
    grenada guadeloupe guam guatemala guernsey guyana haiti hondura iceland indonesia
    ireland jamaica kenya kiribati kuwait kyrgyzstan latvia lebanon lesotho liberia
    libya liechtenstein lithuania luxembourg macao madagascar malawi malaysia maldive
    mali malta martinique mauritania mauritius mayotte micronesia moldova monaco
    mongolia montenegro montserrat morocco mozambique myanmar namibia nauru nepal
    nicaragua niger nigeria niue oman palau panama paraguay peru philippine pitcairn
    portugal qatar romania rwanda samoa senegal serbia seychelle singapore slovakia
    slovenia somalia sudan suriname switzerland tajikistan tanzania thailand togo
    tokelau tonga tunisia turkmenistan tuvalu uganda uruguay uzbekistan vanuatu
    venezuela vietnam yemen zambia zimbabwe
"""
for _w in _OTHER_COUNTRIES.split():
    _ACTORS.setdefault(_w, _w)
_ACTORS.setdefault("turkiye", "turkey")
_ACTORS.setdefault("netherland", "netherlands")


def term_weight(norm: str) -> float:
    """How much a word (folded, plural kept) says about which event a text reports; 0 = none."""
    if norm.isdigit():
        if len(norm) == 4 and _YEAR_RE.fullmatch(norm):
            return _YEAR
        return _NUMBER if norm not in ("0", "1") else 0.0
    if norm in _NOISE or len(norm) < 2:
        return 0.0
    z = _zipf(norm)
    if z >= _STOP_ZIPF or norm in _function_words():
        return 0.0
    return round(min(_MAX, max(_MIN, _TOP - z)), _PRECISION)


@lru_cache(maxsize=1)
def _function_words() -> frozenset[str]:
    """Other languages' commonest words in other scripts (``rules/data/function_words.txt``,
    built by bench/build_function_words.py): weightless as "the" is. English rates a word it
    never writes as rare as a name, and "στην" (in the) or "что" (that) made two reports of
    two events in one place one story."""
    return frozenset(_table_text("data/function_words.txt", "utf-8").split())


def _stem(key: str) -> str:
    return key if key[:1].isdigit() else key[:STEM]


# A mark's weight: this very object, so that a dump knows it for a positive zero without
# looking (see Signature.dump).
_ZERO = 0.0


@lru_cache(maxsize=200_000)
def _word(key: str, norm: str) -> tuple[str, float, str | None, str | None]:
    """A word's stem, weight, event class and country (cached: news repeats its words)."""
    if norm in _NUMBER_WORDS and norm not in ("zero", "one"):
        key = norm = _NUMBER_WORDS[norm]
    return (_stem(key), term_weight(norm), _EVENTS.get(key) or _EVENTS.get(norm),
            _ACTORS.get(key) or _ACTORS.get(norm))


# What _terms needs of a token, by its norm: (key, stem, weight, event mark, country mark,
# actor mark, subject mark), the marks None where the word is no event or country. Strings
# are interned: the live index holds one object per term whatever signature it came from.
# Keyed by the norm alone and checked against the key: one dict lookup per token.
_Word = tuple[str, str, float, "str | None", "str | None", "str | None", str]
_WORDS: dict[str, _Word] = {}
_WORDS_MAX = 200_000


def _word_of(key: str, norm: str) -> _Word:
    """The cached :data:`_Word` of a token (made on a miss)."""
    got = _WORDS.get(norm)
    if got is not None and got[0] == key:
        return got
    stem, w, event, country = _word(key, norm)
    stem = intern(stem)
    got = (key, stem, w,
           intern(EVENT_MARK + event) if event is not None else None,
           intern(COUNTRY_MARK + country) if country is not None else None,
           intern(ACTOR_MARK + country) if country is not None else None,
           intern(SUBJECT_MARK + stem))
    if len(_WORDS) >= _WORDS_MAX:
        _WORDS.clear()
    _WORDS[norm] = got
    return got


@lru_cache(maxsize=64)
def _event_mark(kind: str) -> str:
    return intern(EVENT_MARK + kind)


def _terms(ft: FieldText, into: dict[str, float], limit: int | None = None) -> None:
    keys = ft.keys
    if not keys:
        return
    norms = ft.norms
    pos, last = ft.pos, ft.last
    text, starts, ends = ft.text, ft.starts, ft.ends
    n = len(keys) if limit is None else min(limit, len(keys))
    listed = type(pos) is list and type(last) is list
    if _cterms is not None and type(keys) is list and type(norms) is list and (
            type(starts) is list and type(ends) is list) and (
            listed or (pos == range(len(pos)) and last == pos)) and (
            _CONTEXT_KEYS.isdisjoint(keys[:n + 1])):
        # The same loop in C (see _cstories.c): pos and last None where every token's
        # position is its number.
        _cterms(keys, norms, pos if listed else None, last if listed else None, starts, ends,
                n, text.find(":"), _WORDS, _word_of, _MONTHS, _SPEAKS, into, _ZERO, _YEAR,
                _NUMBER)
        return
    actor = False
    # A source or speaker before a colon near the start ("Kyiv Independent: ...") names no
    # actor.
    colon = text.find(":")
    if colon >= 0 and sum(1 for i in range(n) if ends[i] <= colon) > 4:
        colon = -1
    inside = (-1, -1)  # positions of the current compound's parts after its first
    words = _WORDS
    subject = False
    for i in range(n):
        p, q = pos[i], last[i]
        if q != p:
            # A hyphenated compound: its parts follow and stand for it. Counting the joined
            # form too would make "covid19" the rarest term of every COVID-19 headline.
            inside = (p + 1, q)
            continue
        key = keys[i]
        if inside[0] <= p <= inside[1] and key.isdigit():
            # A number after a hyphen names something ("COVID-19", "F-35"); it is not a count.
            continue
        norm = norms[i]
        got = words.get(norm)
        if got is None or got[0] != key:
            got = _word_of(key, norm)
        _, stem, w, event, country, acting, subject_mark = got
        if w == _NUMBER and i and keys[i - 1] in _MONTHS:
            # "Jan. 6", "July 4": a date names a day, not a count; it weighs as a year.
            w = _YEAR
        if event is not None:
            kind = _IN_CONTEXT.get(event[1:])
            if kind is not None:
                after = keys[i + 1:i + 5]
                if after and after[0][:1].isdigit() and (
                        text[starts[i + 1] - 1:starts[i + 1]] in _MONEY):
                    # An amount of money keeps its sign ("$1.75"), which its key dropped.
                    after = [text[starts[i + 1] - 1] + after[0], *after[1:]]
                read = kind(key, keys[i - 1] if i else "", after)
                event = None if read is None else _event_mark(read)
            if event is not None:
                into[event] = _ZERO
        if country is not None:
            into[country] = _ZERO
            if not actor:
                nxt = i + 1
                speaker = ends[i] <= colon or (nxt < len(keys) and keys[nxt] in _SPEAKS)
                if not speaker:
                    into[acting] = _ZERO  # type: ignore[index]
                    actor = True
        if not subject and w >= 1.0 and starts[i] > colon and not key[:1].isdigit():
            into[subject_mark] = _ZERO
            subject = True
        if w and into.get(stem, 0.0) < w:
            into[stem] = w


def lead(text: str) -> str:
    """The part of ``text`` a signature reads: cut at a space before :data:`_LEAD_CHARS`, so
    no word is cut in two and tokenising the cut text gives the whole text's first tokens."""
    if len(text) <= _LEAD_CHARS:
        return text
    cut = text.rfind(" ", 0, _LEAD_CHARS + 1)
    return text[:cut] if cut > 0 else text[:_LEAD_CHARS]


def _exemplar_text(ex: Exemplar) -> str:
    """``json.dumps(ex)`` in compact form, from cached pieces: the whole ``["stem",weight]`` of
    a term with a non-zero float weight (weights are rounded, so a term comes back with the
    same one) or with the marks' own zero (:data:`_ZERO`), the ``["stem",`` prefix of any
    other. With the C extension, each pair is spelt directly (no cache) and only a term or
    weight json would escape or spell otherwise (quotes, control characters, infinities, ints)
    goes through :func:`_pair_text`."""
    if _cexemplar_text is not None:
        return _cexemplar_text(ex, _pair_text, _REPRS, _REPRS_MAX)
    pairs = _PAIRS
    get = pairs.get
    parts = []
    for p in ex:
        w = p[1]
        # Only a non-zero float, or the very zero marks are made with, is its own cache key:
        # 0.0 == -0.0 and 1.0 == 1 would find each other's text.
        if (type(w) is float and w) or w is _ZERO:
            text = get(p)
            if text is None:
                if len(pairs) >= _PAIRS_MAX:
                    pairs.clear()  # numbers and names come and go; the bound is memory's
                text = pairs[p] = _pair_text(p[0], w)
        else:
            text = _pair_text(p[0], w)
        parts.append(text)
    return "[" + ",".join(parts) + "]"


@dataclass(frozen=True, slots=True)
class Signature:
    """Exemplars (each a sorted tuple of (stem, weight)); the first is the story's founder."""

    exemplars: tuple[Exemplar, ...]
    # Each exemplar's JSON text once dumped (None: not yet), carried over by merged(): a
    # story's signature is dumped with every article it gets, and only the new exemplar is
    # new text. Not part of the value.
    _texts: tuple[str | None, ...] | None = field(default=None, compare=False, repr=False)

    def dump(self) -> str:
        """Compact JSON, ``[[["stem",weight],...],...]``: what ``json.dumps`` spells."""
        texts = self._texts
        if texts is None or None in texts:
            exemplars = self.exemplars
            if texts is None:
                texts = tuple([_exemplar_text(ex) for ex in exemplars])
            else:
                texts = tuple([t if t is not None else _exemplar_text(ex)
                               for ex, t in zip(exemplars, texts, strict=True)])
            object.__setattr__(self, "_texts", texts)
        return "[" + ",".join(texts) + "]"  # type: ignore[arg-type]

    @classmethod
    def load(cls, text: str) -> Signature:
        try:
            raw = json.loads(text)
            # Lists, then tuples: a restart loads every live story's signature.
            exemplars = tuple([tuple([(str(s), float(w)) for s, w in ex]) for ex in raw])
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
        mine = self._texts
        texts: list[str | None] = list(mine) if mine is not None else [None] * len(exemplars)
        theirs = other._texts
        for i, ex in enumerate(other.exemplars):
            if ex in exemplars or not ex:
                continue
            exemplars.append(ex)
            texts.append(theirs[i] if theirs is not None else None)
        if len(exemplars) > limit:
            cut = len(exemplars) - (limit - 1)
            exemplars = exemplars[:1] + exemplars[cut:]
            texts = texts[:1] + texts[cut:]
        return _signature_made(tuple(exemplars), tuple(texts))


_NEW = object.__new__
# The slots' descriptors (the dataclass's fields).
_SET_EXEMPLARS: Callable[[Signature, tuple[Exemplar, ...]], None] = (
    vars(Signature)["exemplars"].__set__)
_SET_TEXTS: Callable[[Signature, tuple[str | None, ...] | None], None] = (
    vars(Signature)["_texts"].__set__)


def _signature_made(exemplars: tuple[Exemplar, ...],
                    texts: tuple[str | None, ...] | None = None) -> Signature:
    """``Signature(exemplars, texts)`` with its slots set directly: the frozen dataclass's
    ``__init__`` (a Python call setting each field through ``object.__setattr__``) took twice
    as long, and one is made for every grouped article."""
    sig: Signature = _NEW(Signature)
    _SET_EXEMPLARS(sig, exemplars)
    _SET_TEXTS(sig, texts)
    return sig


def _exemplar(weights: Mapping[str, float]) -> Exemplar:
    # sorted(weights.items()), by the keys alone (they are distinct): a sort of strs compares
    # them directly, where one of pairs goes through the tuples' comparison for each.
    keys = sorted(weights)
    return tuple(zip(keys, map(weights.__getitem__, keys), strict=True))


def _signature(title: FieldText, text: str) -> Signature:
    weights: dict[str, float] = {}
    if title.keys:
        _terms(title, weights, limit=_TITLE_WORDS)
    elif text:
        # No title (some feeds): the lead's first words stand for it.
        _terms(FieldText.of(lead(text)), weights, limit=_LEAD_WORDS)
    # Strs and floats in tuples: no cycle. A poll keeps each article's signature until its
    # story is decided, and a live story keeps it for the window (see text.untrack).
    if _cexemplar is not None:
        ex = _cexemplar(weights)  # left out of the collector there, with its pairs
    else:
        ex = _exemplar(weights)
        untrack(ex, *ex)
    sig = _signature_made((ex,) if ex else ())
    untrack(sig, sig.exemplars)
    return sig


def signature(title: str, text: str = "") -> Signature:
    """The signature of an article: its title's terms (its lead's only when it has no title).
    The title is read as rules read it, cut to :data:`~watchers.models.MAX_MATCH_TITLE_CHARS`,
    so this is the signature :func:`signature_from` makes of the matched article."""
    return _signature(FieldText.of(title[:MAX_MATCH_TITLE_CHARS]), text)


def signature_of(title: FieldText, text: str = "") -> Signature:
    """:func:`signature` of an article whose title's tokens are made (``FieldText.of(title)``,
    or the matcher's): the same result without tokenising the title again."""
    return _signature(title, text)


def signature_from(analysis: Analysis) -> Signature:
    """:func:`signature` of the analysed article, from the title tokens the rule matcher made
    (``analysis.field("title")``): the same result without tokenising the title again."""
    return _signature(analysis.field("title"), analysis.article.text)
