"""Words of scripts other than Latin, Greek, Cyrillic, Hebrew and Arabic, as their readers see
them: a Hindi or Thai word keeps its vowel signs (Python's ``\\w`` leaves every combining mark
out, so "मोदी" was the words "म" and "द" and a Modi rule fired on "मैदान", the ground); a key
keeps the marks that are letters' own (パリ, Paris, is not バリ, Bali); a Hangul prefix compares
syllables (``가자*``, Gaza, did not find 가장, "most"); a Latin word or number written against
Han, kana or Hangul is found (NATO首脳会議); the Hebrew geresh is an apostrophe (ג׳נין, Jenin, as
ג'נין); Persian's yeh and keheh are Arabic's. Through the rule engine, on both word scans."""

from __future__ import annotations

import unicodedata

import pytest

from watchers.models import Article
from watchers.rules import Rule, RuleSet, _marks
from watchers.rules import text as text_mod
from watchers.rules.text import FieldText, key


def _hits(query: str, title: str) -> list[str]:
    """The words a one-rule set highlights in ``title``; [] when it does not fire."""
    found = RuleSet([Rule(name="r", query=query)]).match(Article(title=title, text=""))
    return [h.text for m in found for h in m.hits]


@pytest.mark.parametrize(("query", "title"), [
    ("मोदी", "खिलाड़ी मैदान में उतरे"),  # players took the field: "मैदान" began as "म द"
    ("मोदी", "संसद में मुद्दा उठा"),  # an issue raised in parliament
    ("title:मोदी", "मादा तेंदुआ पकड़ा गया"),  # a female leopard caught
    ("रत", "भारत सरकार"),  # a short word inside "Bharat"
    ("পদ্মা", "পদ পদক"),  # Bengali: Padma, not "post, medal"
    ("தமிழ்", "தம் மிழற்று"),  # Tamil
    ("パリ", "バリ 観光客 急増"),  # Paris, not Bali
    ("ビザ", "ピザ"),  # visa, not pizza
    ("ゴール", "コール"),  # goal, not call
    ("가자*", "올해 가장 많이 팔린 책"),  # Gaza*, not "the most"
    ("서*", "석유 가격"),
])
def test_a_word_does_not_fire_inside_another_that_shares_its_letters(
        query: str, title: str) -> None:
    assert _hits(query, title) == []


@pytest.mark.parametrize(("query", "title", "hits"), [
    ("मोदी", "प्रधानमंत्री मोदी ने कहा", ["मोदी"]),
    ("मोदी NEAR/4 चुनाव", "मोदी ने रैली में चुनाव पर बात की", ["मोदी", "चुनाव"]),
    ('"मोदी ने"', "प्रधानमंत्री मोदी ने कहा", ["मोदी ने"]),
    ("दिल्ली", "दिल्ली में बारिश", ["दिल्ली"]),  # highlighted whole, its last vowel sign too
    ("กรุงเทพ", "ข่าว กรุงเทพ วันนี้", ["กรุงเทพ"]),
    ("パリ", "パリ 会談", ["パリ"]),
    ("バリ", "ﾊﾞﾘ 観光", ["ﾊﾞﾘ"]),  # half-width katakana, its voicing mark apart
    ("バリ", "ハ\u3099リ 観光", ["ハ\u3099リ"]),  # decomposed: one word, and Bali
    ("가자*", "가자지구 공습", ["가자지구"]),
    ("nato", "NATO首脳会議、ウクライナ支援で合意", ["NATO"]),
    ("nato", "美国总统拜登与NATO秘书长会谈", ["NATO"]),
    ("g7", "G7サミット 広島で開幕", ["G7"]),
    ("kyiv", "泽连斯基在Kyiv会见", ["Kyiv"]),
    ("title:trump", "Trump氏が勝利", ["Trump"]),
    ("nato", "NATO는 회의를 열었다", ["NATO"]),
    ("2024", "2024年の選挙", ["2024"]),
    ("NATO首脳会議", "NATO首脳会議", ["NATO首脳会議"]),  # the whole still finds itself
    ('"nato 首脳会議"', "NATO首脳会議", ["NATO首脳会議"]),
    ("ג'נין", "מבצע צבאי ג׳נין", ["ג׳נין"]),
    ("ג׳נין", "מבצע צבאי ג'נין", ["ג'נין"]),
    ("ايران", "ایران و عراق", ["ایران"]),  # Arabic yeh in the rule, Persian in the text
    ("کابل", "كابل", ["كابل"]),
])
def test_a_word_is_found_as_its_script_writes_it(query: str, title: str, hits: list[str]) -> None:
    assert _hits(query, title) == hits


def test_a_highlight_ends_after_the_words_last_mark() -> None:
    title = "प्रधानमंत्री मोदी ने कहा"
    (hit,) = RuleSet([Rule(name="r", query="मोदी")]).match(
        Article(title=title, text=""))[0].hits
    assert title[hit.start:hit.end] == "मोदी"
    assert unicodedata.category(title[hit.end - 1]) == "Mc"  # the vowel sign ी is in it


def test_accents_still_leave_keys_and_letters_marks_stay() -> None:
    assert key("Київ") == key("Киів") and key("Élan") == "elan" and key("Việt") == "viet"
    assert key("غَزَّة") == key("غزة") and key("שָׁלוֹם") == key("שלום")
    assert key("ukraine\ufe0f") == "ukraine" == key("u\u034fkraine")  # selector, joiner
    assert key("パリ") != key("バリ") != key("ハリ")
    assert key("ﾊﾞﾘ") == key("バリ") == key("ハ\u3099リ")
    assert key("가장") == "가장" and len(key("가장")) == 2  # syllables, not letters
    assert key("मोदी") != key("मद")


def test_the_marks_table_is_every_combining_mark() -> None:
    """watchers/rules/_marks.py (made by bench/build_marks.py) lists exactly the code points of
    category M of the Unicode it names; under a newer Unicode each is still a mark."""
    listed = {cp for a, b in _marks.MARK_RANGES for cp in range(a, b + 1)}
    assert all(unicodedata.category(chr(cp)).startswith("M") for cp in listed)
    if unicodedata.unidata_version == _marks.UNICODE_VERSION:
        every = {cp for cp in range(0x110000) if unicodedata.category(chr(cp)).startswith("M")}
        assert listed == every


def test_the_c_scan_keeps_every_mark_in_its_word_as_the_pure_scan_does() -> None:
    """Each mark, and the code points either side of each range of them, between two letters:
    the C scan's table (in _ctext.c) and the pure path's agree."""
    try:
        from watchers.rules import _ctext
    except ImportError:  # pragma: no cover - depends on the install
        pytest.skip("watchers.rules._ctext is not built")
    points: set[int] = set()
    for a, b in _marks.MARK_RANGES:
        points.update(range(max(a - 1, 0), b + 2))
    saved = text_mod._scan, text_mod._scan_terms, text_mod._tokens, text_mod._positions
    texts = [f"ab{chr(cp)}cd क{chr(cp)} {chr(cp)}x" for cp in sorted(points)
             if not 0xD800 <= cp <= 0xDFFF]
    try:
        text_mod._scan, text_mod._scan_terms = _ctext.scan, _ctext.terms
        text_mod._tokens, text_mod._positions = _ctext.tokens, _ctext.positions
        c = [(FieldText.of(t).keys, FieldText.of(t).starts, FieldText.of(t).ends) for t in texts]
        text_mod._scan = text_mod._scan_terms = text_mod._tokens = text_mod._positions = None
        pure = [(FieldText.of(t).keys, FieldText.of(t).starts, FieldText.of(t).ends)
                for t in texts]
    finally:
        (text_mod._scan, text_mod._scan_terms, text_mod._tokens,
         text_mod._positions) = saved
    assert c == pure


def test_a_mark_continues_a_word_and_never_starts_one() -> None:
    """An emoji's variation selector or keycap written against a word ("⚠️NATO", "#️⃣NATO")
    became the start of that word once every mark could be in one: its highlight took the
    selector, and the bold markers cut the emoji in two (a keycap shown as a plain "#")."""
    title = "⚠️NATO summit #️⃣NATO"
    found = RuleSet([Rule(name="r", query="nato")]).match(Article(title=title, text=""))
    assert [(h.start, h.end, h.text) for m in found for h in m.hits] == [
        (2, 6, "NATO"), (17, 21, "NATO")]
    assert _hits("nato", "\u0301NATO") == ["NATO"]  # a stray accent before a word
