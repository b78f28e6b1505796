"""Message templates (watchers.templates): parsing with escapes, every problem reported with
what is known, and filling that never exceeds a limit nor breaks a value that must stay whole."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from watchers.templates import (
    ATOMIC,
    MAX_TEMPLATE_LENGTH,
    PLACEHOLDERS,
    Placeholder,
    TemplateError,
    check_template,
    fill,
    parse_template,
    placeholders_in,
)


def test_placeholders_and_escaped_braces_parse() -> None:
    assert parse_template("{{x}} {title} at {link}}}") == [
        "{x} ", Placeholder("title"), " at ", Placeholder("link"), "}"]
    assert placeholders_in("{title}{title} {{why}}") == {"title"}
    assert fill("{{{title}}}", {"title": "T"}) == "{T}"


def test_unknown_placeholder_names_it_and_the_known_ones() -> None:
    (problem,) = check_template("**{titel}** {link}")
    assert "unknown placeholder {titel}" in problem
    for name in PLACEHOLDERS:
        assert "{" + name + "}" in problem


def test_unbalanced_braces_say_where_and_how_to_write_a_brace() -> None:
    problems = check_template("a { b")
    assert problems == ["unclosed '{' at position 3; write '{{' for a literal brace"]
    assert check_template("x } y") == ["single '}' at position 3; write '}}' for a literal brace"]
    # an opening brace inside another is unclosed, and the rest is still read
    both = check_template("{ti{title}} {nope}")
    assert any("unclosed '{' at position 1" in p for p in both)
    assert any("single '}' at position 11" in p for p in both)
    assert any("unknown placeholder {nope}" in p for p in both)


def test_every_problem_is_reported_at_once() -> None:
    problems = check_template("@everyone {titel} }" + "x" * MAX_TEMPLATE_LENGTH)
    assert len(problems) == 4
    assert any("characters long" in p and str(MAX_TEMPLATE_LENGTH) in p for p in problems)
    assert any("may not mention" in p for p in problems)


def test_templates_may_not_ping() -> None:
    for bad in ("@here {title}", "<@123> {title}", "<@&5> {title}", "<@!5>", "{title} @Everyone"):
        assert any("may not mention" in p for p in check_template(bad)), bad
    assert check_template("mail news@desk.example {title}") == []  # an address is no mention
    assert check_template("") and check_template("   ")


def test_parse_refuses_a_bad_template() -> None:
    try:
        parse_template("{x}")
    except TemplateError as exc:
        assert "unknown placeholder {x}" in str(exc)
    else:
        raise AssertionError("parse_template accepted {x}")


def test_fill_without_a_limit_substitutes_every_use() -> None:
    out = fill("{title}|{title}|{why}", {"title": "A", "why": "w"})
    assert out == "A|A|w"
    assert fill("{snippet}", {}) == ""  # a value not given is empty


def test_fill_cuts_the_longest_cuttable_value_first() -> None:
    values = {"title": "T" * 50, "snippet": "s" * 1000, "link": "https://a.example/x"}
    out = fill("{title} {link}\n{snippet}", values, limit=200)
    assert len(out) == 200
    assert out.startswith("T" * 50 + " https://a.example/x\n")
    assert out.endswith("…")


def test_atomic_values_are_left_out_whole_not_cut() -> None:
    link = "https://a.example/" + "p" * 300
    out = fill("{link} {title}", {"link": link, "title": "t" * 100}, limit=120)
    assert link not in out and "https://" not in out  # no half a URL
    assert len(out) <= 120


def test_a_cut_never_leaves_a_dangling_escape_or_open_bold() -> None:
    out = fill("{snippet}", {"snippet": "ab **cd** ef \\*" * 20}, limit=17)
    assert len(out) <= 17
    body = out.rstrip("…")
    assert (len(body) - len(body.rstrip("\\"))) % 2 == 0
    assert body.count("**") % 2 == 0


KNOWN = st.sampled_from(sorted(PLACEHOLDERS))
LITERAL = st.text(alphabet=st.characters(blacklist_categories=["Cs"],
                                         blacklist_characters="{}⟦⟧"), max_size=40)


@st.composite
def templates(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.one_of(LITERAL, KNOWN.map(lambda n: "{" + n + "}")),
                          min_size=1, max_size=12))
    return "".join(parts)


@st.composite
def value_sets(draw: st.DrawFn) -> dict[str, str]:
    """Free text for cuttable values; for atomic ones a marked value, so a cut would show."""
    out = {}
    for name in draw(st.sets(KNOWN)):
        if name in ATOMIC:
            out[name] = f"⟦{name}" + "x" * draw(st.integers(0, 2500)) + "⟧"
        else:
            out[name] = draw(st.text(alphabet=st.characters(blacklist_categories=["Cs"],
                                                            blacklist_characters="⟦⟧"),
                                     max_size=3000))
    return out


@settings(max_examples=300, deadline=None)
@given(template=templates(), values=value_sets(), limit=st.integers(min_value=0, max_value=4096))
def test_any_template_fills_within_any_limit(template: str, values: dict[str, str],
                                             limit: int) -> None:
    assume(not check_template(template))
    out = fill(template, values, limit=limit)
    assert len(out) <= limit
    unlimited = fill(template, values)
    if len(unlimited) <= limit:
        assert out == unlimited
    if len(fill(template, {})) <= limit:
        # the template's own text is never cut: every literal part is there, in order
        at = 0
        for seg in parse_template(template):
            if isinstance(seg, str):
                found = out.find(seg, at)
                assert found >= 0, (seg, out)
                at = found + len(seg)
        # an atomic value is whole or absent
        for name, value in values.items():
            if name in ATOMIC:
                assert out.count(f"⟦{name}") == out.count(value)


def test_direction_and_control_characters_in_a_template_are_shown_not_obeyed() -> None:
    # A direction control would reorder what follows it, the article's title included: it is
    # shown as its escape; other controls as their pictures. Line breaks, tabs and the
    # direction marks of right-to-left text (U+200F) stay as written. Nothing is refused, so
    # a rule stored with such a template keeps running.
    template = "\u202eALERT {title} \u2066x\u2069 bell\x07\n\tok \u200f"
    assert check_template(template) == []
    assert parse_template(template) == [
        "\\u202eALERT ", Placeholder("title"), " \\u2066x\\u2069 bell\u2407\n\tok \u200f"]


def test_a_nul_character_is_refused_by_name() -> None:
    """Accepted, it stopped `run` on PostgreSQL and a copy of the store to it (the rule is
    kept with its alerts, and PostgreSQL keeps no NUL)."""
    from watchers.config import parse_config
    from watchers.errors import ConfigError

    assert any("NUL character" in p for p in check_template("ALERT \x00 {title}"))
    with pytest.raises(ConfigError, match=r"rules\[0\]\.template: .*NUL character"):
        parse_config({"storage": {"path": "nw.db"}, "rules": [
            {"name": "t", "query": "troops", "template": "ALERT \x00 {title}"}]})
    with pytest.raises(ConfigError, match=r"rules\[0\]\.query: .*NUL character"):
        parse_config({"storage": {"path": "nw.db"}, "rules": [
            {"name": "t", "query": "troops \x00 tanks"}]})
