"""Templated alerts (bot.embeds with watchers.templates): which template applies, both styles,
and — for any template and any article — Discord's limits, escaping and mention safety.

The longest real article of the shared corpora (tests/data/templates/longest.json, written by
bench/longest_article.py) renders within the limits under every combination of placeholders."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import discord
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from bot.embeds import (
    DEFAULT_TEXT_TEMPLATE,
    LIMITS,
    alert_message,
    alert_template,
    template_values,
    with_ack_line,
)
from tests.bot.test_embeds import check_limits, masked_links
from watchers.config import RouteConfig, RuleConfig, TemplateStyle
from watchers.delivery import Alert, StoryView
from watchers.models import Article, Match
from watchers.rules import match_query
from watchers.templates import MAX_TEMPLATE_LENGTH, PLACEHOLDERS, check_template

LONGEST = Path(__file__).resolve().parent.parent / "data" / "templates" / "longest.json"
ROLE = 1100000000000000101
WHEN = datetime(2022, 2, 24, 4, 0, tzinfo=UTC)


def bare_mentions(text: str) -> list[str]:
    """Mentions Discord would parse in ``text``: an escaped character shows as written."""
    return re.findall(r"@everyone|@here|<@[!&]?\d+>", re.sub(r"\\.", "", text, flags=re.S))


def strings(value: Any) -> Iterator[str]:
    """Every text of an embed's JSON that Discord shows as markdown (not its link)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            if k != "url":
                yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def make_alert(art: Article, *rules: RuleConfig, query: str = "troops",
               story: StoryView | None = None, route: str = "alerts",
               match: Match | None = None) -> Alert:
    m = match or match_query(query, art)
    return Alert(id=1, route=route, nonce="n", attempt=1, article=art,
                 matches=(m,) if m else (), rules=rules, story=story)


def rendered(kwargs: dict[str, Any]) -> str:
    embed = kwargs["embed"]
    return kwargs["content"] or "" if embed is None else embed.description or ""


def check_message(kwargs: dict[str, Any], roles: set[int]) -> None:
    """Inside Discord's limits and pinging nobody but ``roles``, in content and embed alike."""
    content = kwargs["content"] or ""
    assert len(content) <= LIMITS["content"]
    embed = kwargs["embed"]
    if embed is not None:
        check_limits(embed, content)
    texts = [content] + ([] if embed is None else list(strings(embed.to_dict())))
    for text in texts:
        for mention in bare_mentions(text):
            assert mention in {f"<@&{r}>" for r in roles}, (mention, text[:300])
    allowed: discord.AllowedMentions = kwargs["allowed_mentions"]
    assert allowed.everyone is False and allowed.users is False
    if roles:
        assert isinstance(allowed.roles, list)
        assert {o.id for o in allowed.roles} == roles
    else:
        assert allowed.roles is False


# ------------------------------------------------------------------ which template applies


def test_without_a_template_the_standard_embed_is_unchanged() -> None:
    art = Article(id="a1", title="Troops move", text="Troops moved at dawn.", source="DW")
    rule = RuleConfig(name="troops", query="troops")
    assert alert_template(make_alert(art, rule)) is None
    plain = alert_message(make_alert(art, rule))
    routed = alert_message(make_alert(art, rule), route=RouteConfig(target=1))
    assert plain["embed"].to_dict() == routed["embed"].to_dict()
    assert plain["content"] is None and routed["content"] is None
    assert [f.name for f in plain["embed"].fields] == ["Rule", "Published", "Why"]
    assert plain["embed"].description == "**Troops** moved at dawn."


def test_the_rule_template_wins_over_the_route_and_the_most_severe_rule_first() -> None:
    art = Article(id="a1", title="Troops move", text="Troops moved.", source="DW")
    route = RouteConfig(target=1, template="route: {title}", template_style="text")
    low = RuleConfig(name="low", query="troops", severity="low", template="low: {title}")
    high = RuleConfig(name="high", query="troops", severity="high",
                      template="high: {title}", template_style="text")
    plain = RuleConfig(name="plain", query="troops", severity="critical")
    assert alert_template(make_alert(art, plain), route) == ("route: {title}", "text")
    assert alert_template(make_alert(art, low, high, plain), route) == ("high: {title}", "text")
    assert alert_template(make_alert(art, low, plain), route) == ("low: {title}", "embed")
    text_only = RuleConfig(name="t", query="troops", template_style="text")
    assert alert_template(make_alert(art, text_only)) == (DEFAULT_TEXT_TEMPLATE, "text")
    default = alert_message(make_alert(art, text_only))["content"]
    assert default.startswith("**Troops move** · DW · unknown\n**Troops** moved.")
    assert alert_message(make_alert(art, plain), route=route)["content"] == "route: Troops move"


def test_embed_style_fills_the_description_and_keeps_title_link_colour_footer() -> None:
    art = Article(id="a1", title="Troops move", text="Troops moved at dawn.", source="DW",
                  url="https://dw.example/a", published=WHEN)
    rule = RuleConfig(name="troops", query="troops", severity="high", mention_role=ROLE,
                      template="{severity} · {rules} · {source} · {published}\n{why}")
    kwargs = alert_message(make_alert(art, rule))
    embed = kwargs["embed"]
    assert embed.description == (f"high · `troops` · DW · <t:{int(WHEN.timestamp())}:f>\n"
                                 "Troops")
    assert embed.title == "**Troops** move" and embed.url == "https://dw.example/a"
    assert embed.colour is not None and embed.colour.value == 0xE67E22
    assert embed.footer.text == "newswatch · high · article a1"  # the webhook retry marker
    assert not embed.fields
    assert kwargs["content"] == f"<@&{ROLE}>"
    check_message(kwargs, {ROLE})


def test_text_style_posts_plain_content_with_the_role_first() -> None:
    art = Article(id="a1", title="Troops [move]", text="Troops moved.", source="DW",
                  url="https://dw.example/a(1)")
    rule = RuleConfig(name="troops", query="troops", mention_role=ROLE,
                      template="{headline} — {link}", template_style="text")
    kwargs = alert_message(make_alert(art, rule))
    assert kwargs["embed"] is None
    assert kwargs["content"] == (f"<@&{ROLE}>\n[Troops \\[move\\]](https://dw.example/a%281%29)"
                                 " — https://dw.example/a%281%29")
    assert masked_links(kwargs["content"]) == ["https://dw.example/a%281%29"]
    check_message(kwargs, {ROLE})


def test_an_empty_rendering_still_posts_the_headline() -> None:
    art = Article(id="a1", title="Troops move", text="Troops moved.")
    rule = RuleConfig(name="troops", query="troops", template="{story}", template_style="text")
    assert alert_message(make_alert(art, rule))["content"] == "**Troops move**"


def test_the_story_stays_visible_when_the_template_does_not_place_it() -> None:
    art = Article(id="a1", title="Troops move", text="Troops moved.", source="DW")
    story = StoryView(id="s1", headline="Troops move", first_seen=WHEN, last_seen=WHEN,
                      outlets=("DW", "NPR", "BBC"), articles=3)
    with_field = RuleConfig(name="a", query="troops", template="{title}")
    embed = alert_message(make_alert(art, with_field, story=story))["embed"]
    assert [f.name for f in embed.fields] == ["Story"]
    assert "Also reported by NPR, BBC" in embed.fields[0].value
    placed = RuleConfig(name="a", query="troops", template="{title}\n{story}\n{outlets}")
    embed = alert_message(make_alert(art, placed, story=story))["embed"]
    assert not embed.fields
    assert "Also reported by NPR, BBC" in embed.description
    assert embed.description.endswith("DW, NPR, BBC")


def test_escalation_banner_comes_before_the_template() -> None:
    art = Article(id="a1", title="Troops move", text="Troops moved.")
    rule = RuleConfig(name="a", query="troops", severity="critical", template="{title}",
                      template_style="text")
    alert = make_alert(art, rule)
    alert = Alert(**{**alert.__dict__, "escalated_from": "low"})
    assert alert_message(alert)["content"] == "**Escalated: low → critical**\nTroops move"


# ------------------------------------------------------------------ mention safety


def test_an_at_sign_of_the_template_cannot_join_a_value_into_a_mention() -> None:
    art = Article(id="a1", title="everyone", text="troops", source="here")
    for style in ("text", "embed"):
        rule = RuleConfig(name="a", query="troops", template="@{title} @{source} \\{why}",
                          template_style=style)
        kwargs = alert_message(make_alert(art, rule))
        text = rendered(kwargs)
        assert "\\@everyone" in text and "\\@here" in text
        check_message(kwargs, set())


def test_links_cannot_carry_a_mention_or_credentials() -> None:
    rule = RuleConfig(name="a", query="troops", template="{link} {headline}",
                      template_style="text")
    art = Article(id="a1", title="t", text="troops", url="https://x.example/@everyone?u=@here")
    content = alert_message(make_alert(art, rule))["content"]
    assert "https://x.example/%40everyone?u=%40here" in content
    assert not bare_mentions(content)
    phish = Article(id="a2", title="t", text="troops", url="https://bank.example@evil.example/")
    assert template_values(make_alert(phish, rule))["link"] == ""
    assert "evil" not in alert_message(make_alert(phish, rule))["content"]


HOSTILE = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=300),
    st.sampled_from(["@everyone", "@here", "<@123>", "<@&456>", "<@!789>", "everyone", "here",
                     "\\", "\\\\", "**", "[x](https://evil.example)", "`", "||s||", "<#1>",
                     "https://evil.example/@everyone", "\n\n# h", "{title}", "}}{{"]),
)


@st.composite
def hostile_text(draw: st.DrawFn, big: int) -> str:
    parts = draw(st.lists(HOSTILE, max_size=8))
    if draw(st.booleans()):
        parts.append(draw(st.sampled_from(["x ", "@everyone ", "\\*"])) * big)
    return " ".join(parts)


@st.composite
def any_template(draw: st.DrawFn) -> str:
    names = st.sampled_from(sorted(PLACEHOLDERS)).map(lambda n: "{" + n + "}")
    literal = st.sampled_from(["", " ", "\n", "@", "\\", "**", "**Alert**: ", " · ", "<", "[",
                               "](", ")", "`", "> ", "# ", "||", "x" * 300, "{{", "}}"])
    parts = draw(st.lists(st.one_of(names, literal), min_size=1, max_size=30))
    template = "".join(parts)[:MAX_TEMPLATE_LENGTH]
    assume(not check_template(template))
    return template


@settings(max_examples=200, deadline=None)
# found once: a text template that leaves nothing but a headline too long to post whole
@example(template="{headline}", style="text", title="x " * 400, text="", source="",
         url="https://ok.example/" + "p" * 1900, role=None, outlets=0, latest=False)
@given(template=any_template(), style=st.sampled_from(["embed", "text"]),
       title=hostile_text(400), text=hostile_text(3000), source=hostile_text(200),
       url=st.one_of(st.none(), st.sampled_from([
           "https://ok.example/a", "https://ok.example/@everyone", "https://u@evil.example/",
           "javascript:alert(1)", "https://ok.example/a)[t](https://phish.example/",
           "https://ok.example/" + "p" * 1900])),
       role=st.one_of(st.none(), st.just(ROLE)), outlets=st.integers(0, 300),
       latest=st.booleans())
def test_any_template_with_hostile_values_is_mention_safe_and_within_limits(
        template: str, style: TemplateStyle, title: str, text: str, source: str, url: str | None,
        role: int | None, outlets: int, latest: bool) -> None:
    art = Article(id="a" + "1" * 30, title=title or "t", text=text + " troops", source=source,
                  url=url, published=WHEN)
    story = None if not outlets else StoryView(
        id="s", headline=title, first_seen=WHEN, last_seen=WHEN,
        outlets=tuple(f"{source[:50]}{i}" for i in range(outlets)), articles=outlets + 1)
    rule = RuleConfig(name="troops", query="troops", mention_role=role, severity="high",
                      template=template, template_style=style)
    newest = art.model_copy(update={"title": title + "!"}) if latest else None
    kwargs = alert_message(make_alert(art, rule, story=story), latest=newest)
    check_message(kwargs, {role} if role else set())
    assert (kwargs["embed"] is None) == (style == "text")
    body = rendered(kwargs)
    if style == "text":
        assert body.strip()
    # article text adds no masked link: only {headline} and the story's newest line make one
    uses = template.count("{headline}") + (template.count("{story}") if latest else 0)
    literal_links = len(masked_links(template.replace("{{", "{").replace("}}", "}")))
    assert len(masked_links(body)) <= uses + literal_links + (1 if latest else 0)


# ------------------------------------------------------------------ the longest real article


def test_every_placeholder_combination_fits_for_the_longest_real_article() -> None:
    data = json.loads(LONGEST.read_text(encoding="utf-8"))
    assert data["lengths"]["text"] > 10_000  # the fixture is the real worst case, not a stub
    art = Article(id="kj-0090-" + "9" * 40, title=data["title"], text=data["text"],
                  url=data["url"], source=data["source"], published=WHEN)
    query = "magnetic OR syringes"  # few hits: the values are as long, the test fast
    story = StoryView(id="s" * 32, headline=data["title"], first_seen=WHEN, last_seen=WHEN,
                      outlets=tuple(f"{data['source']} {i}" for i in range(400)), articles=999)
    match = match_query(query, art)
    assert match is not None
    names = sorted(PLACEHOLDERS)
    rendered_any = 0
    for size in range(1, len(names) + 1):
        for combo in itertools.combinations(names, size):
            used = "".join("{" + n + "}" for n in combo)
            # the template's own text as long as allowed: the values get the least room
            template = used + "x" * (MAX_TEMPLATE_LENGTH - len(used))
            for style in ("text", "embed"):
                rule = RuleConfig(name="r", query=query, mention_role=ROLE, severity="critical",
                                  template=template, template_style=style)
                alert = make_alert(art, rule, story=story, match=match)
                kwargs = alert_message(alert, latest=art)
                check_message(kwargs, {ROLE})
                rendered_any += 1
    assert rendered_any == 2 * (2 ** len(names) - 1)


_T = datetime(2024, 1, 1, 12, tzinfo=UTC)


def _long_story_alert(template: str | None, rules: tuple[RuleConfig, ...] = ()
                      ) -> tuple[Alert, Article]:
    art = Article(id="a1", title="Troops cross the river", source="DW", published=_T,
                  text="Troops crossed the river at dawn. " * 300,
                  url="https://news.example/a/" + "p" * 1200)
    newest = Article(id="a2", title="Troops reach the city", text="x", source="NPR",
                     url="https://npr.example/story/" + "q" * 850, published=_T)
    story = StoryView(id="s1", headline="Troops cross", first_seen=_T, last_seen=_T,
                      outlets=("DW", "NPR", "BBC"), articles=3)
    rules = rules or (RuleConfig(name="troops", query="troops", severity="high",
                                 template=template, template_style="text"),)
    alert = Alert(id=1, route="alerts", nonce="n", attempt=1, article=art,
                  matches=(m,) if (m := match_query("troops", art)) else (), rules=rules,
                  story=story)
    return alert, newest


def _open_link(text: str) -> bool:
    """Whether a masked link was cut after its "](" (Discord shows it as raw markdown)."""
    middle = text.rfind("](")
    return middle >= 0 and ")" not in text[middle:]


def test_a_story_value_cut_to_fit_never_ends_inside_its_link() -> None:
    """{story} holds the newest article's link: cut to fit the message, it ended inside the
    link ("Newest: [Troops reach the city](https://npr.e…"), shown as raw markdown."""
    alert, newest = _long_story_alert("{headline}\n{story}")
    content = alert_message(alert, latest=newest)["content"]
    assert len(content) <= LIMITS["content"]
    assert not _open_link(content), content[-200:]


def test_acknowledging_a_text_alert_keeps_its_links_whole() -> None:
    """The acknowledgement line was made room for by cutting the content, which the text
    template fills to the limit, through the story's "Newest:" link."""
    line = "✅ Acknowledged by <@123456789012345678> at <t:1704110400:t>"
    for tail in ("Newest: [Troops reach the city](https://npr.example/" + "q" * 70 + ") · NPR",
                 "`troops-01`, `troops-02-with-a-long-name`", "updated <t:1704110400:t>"):
        content = "[Troops cross](https://news.example/a) " + "x" * (1990 - len(tail) - 40)
        content += " " + tail
        acked = with_ack_line(content, line)
        assert len(acked) <= LIMITS["content"] and acked.endswith("\n" + line)
        body = acked[: -len(line) - 1]
        assert not _open_link(body), body[-200:]
        assert body.count("`") % 2 == 0 and body.rfind("<t:") <= body.rfind(">"), body[-120:]
        assert masked_links(body) == ["https://news.example/a"]  # the headline's link kept


def test_a_rule_list_cut_to_fit_leaves_no_code_span_open() -> None:
    """{rules} is the rules' names in backticks: cut, it ended in an open code span, which
    took in the text after it up to the next backtick (a title's escaped one) and broke the
    headline's link."""
    rules = tuple(RuleConfig(name=f"troops-{i:02d}-" + "x" * 54, query="troops",
                             template="{rules}\n{headline}", template_style="text")
                  for i in range(50))
    art = Article(id="a1", title="Troops `cross` the river", text="Troops crossed.",
                  source="DW", published=_T, url="https://news.example/a")
    alert = Alert(id=1, route="alerts", nonce="n", attempt=1, article=art,
                  matches=(m,) if (m := match_query("troops", art)) else (), rules=rules)
    content = alert_message(alert)["content"]
    first = content.split("\n", 1)[0]
    assert first.count("`") % 2 == 0, first[-120:]
    assert masked_links(content) == ["https://news.example/a"]
