"""Pure rendering: Discord's limits, escaping, and only http(s) links — for any article, and
never more than one masked link per result whatever the article's URL holds."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import discord
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.embeds import (
    LIMITS,
    alert_message,
    article_embed,
    escape,
    fit_embed,
    link_target,
    masked_link,
    render_runs,
    results_embed,
    rules_embed,
    safe_url,
    sources_embed,
    stats_embed,
    truncate,
)
from watchers.config import RuleConfig, TemplateStyle
from watchers.delivery import Alert
from watchers.engine import RuleView, SourceView, Stats
from watchers.models import Article
from watchers.rules import match_query
from watchers.snippet import Run, title_runs
from watchers.store.base import SourceState, StoryRecord

TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=8000)


def unescape(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s)


# Discord's masked-link rule (simple-markdown's ``link``): [label](target), where the label may
# hold balanced brackets and the target balanced parentheses, or backslash-escaped characters.
_LINK = re.compile(
    r"\[((?:\[[^\]]*\]|[^\[\]]|\](?=[^\[]*\]))*)\]"
    r"\(\s*<?((?:\([^)]*\)|[^\s\\]|\\.)*?)>?(?:\s+['\"]([\s\S]*?)['\"])?\s*\)")


def masked_links(markdown: str) -> list[str]:
    """The targets of the masked links Discord would render, scanning as its parser does: an
    escaped character is text, a link is taken whole, anything else moves on by one."""
    found, i = [], 0
    while i < len(markdown):
        if markdown[i] == "\\":
            i += 2
            continue
        m = _LINK.match(markdown, i)
        if m:
            found.append(m.group(2))
            i = m.end()
        else:
            i += 1
    return found


def check_limits(embed: discord.Embed, content: str | None = None) -> None:
    d = embed.to_dict()
    assert len(d.get("title", "")) <= LIMITS["title"]
    assert len(d.get("description", "")) <= LIMITS["description"]
    assert len(d.get("fields", [])) <= LIMITS["fields"]
    for f in d.get("fields", []):
        assert 0 < len(f["name"]) <= LIMITS["field_name"]
        assert 0 < len(f["value"]) <= LIMITS["field_value"]
    assert len(d.get("footer", {}).get("text", "")) <= LIMITS["footer"]
    assert len(d.get("author", {}).get("name", "")) <= LIMITS["author"]
    assert len(embed) <= LIMITS["total"]
    if content is not None:
        assert len(content) <= LIMITS["content"]
    url = d.get("url")
    assert url is None or url.startswith(("http://", "https://"))


@settings(max_examples=150, deadline=None)
@given(title=TEXT, text=TEXT, source=st.text(max_size=400),
       url=st.one_of(st.none(), st.text(max_size=50),
                     st.sampled_from(["javascript:alert(1)", "https://ok.example/a",
                                      "ftp://x.example/", "data:text/html,hi",
                                      "https://ok.example/a)[t](https://phish.example/"]),
                     st.builds("https://ok.example/{}".format, st.text(max_size=50))))
def test_any_article_renders_inside_the_limits(title: str, text: str, source: str,
                                               url: str | None) -> None:
    art = Article(title=title or "t", text=text + " troops", source=source, url=url,
                  published=datetime(2022, 1, 24, tzinfo=UTC))
    m = match_query("troops", art)
    assert m is not None
    alert = Alert(id=1, route="alerts", nonce="n", attempt=1, article=art, matches=(m,),
                  rules=(RuleConfig(name="troops", query="troops", severity="high"),))
    kwargs = alert_message(alert)
    check_limits(kwargs["embed"], kwargs["content"])
    assert kwargs["allowed_mentions"].everyone is False
    check_limits(article_embed(art, [m]))
    results = results_embed("q" * 300, [(art, m)] * 5, page=0, pages=1, total=5)
    check_limits(results)
    assert results.description is not None
    assert all(len(masked_links(line)) <= 1 for line in results.description.splitlines())


def test_markup_shows_as_written() -> None:
    hostile = "@everyone <@&1> [x](https://evil) `code` **bold** __u__ ~~s~~ ||spoiler|| # h"
    assert unescape(escape(hostile)) == hostile
    escaped = escape(hostile)
    for char in "@<[(`*_~|#":
        # every markup character is preceded by a backslash
        assert re.search(rf"(?<!\\){re.escape(char)}", escaped) is None, char


def test_only_http_urls() -> None:
    assert safe_url("https://a.example/x?y=1") == "https://a.example/x?y=1"
    for bad in ("javascript:alert(1)", "ftp://a.example", "https://", "http:// spaced.example",
                "data:text/html,x", None, ""):
        assert safe_url(bad) is None


def test_long_text_is_cut_with_an_ellipsis_at_a_boundary() -> None:
    art = Article(title="x" * 1000, text=("troops " * 3000).strip(), source="s" * 1000)
    m = match_query("troops", art)
    assert m is not None
    alert = Alert(id=1, route="r", nonce="n", attempt=1, article=art, matches=(m,),
                  rules=(RuleConfig(name="troops", query="troops"),))
    embed = alert_message(alert)["embed"]
    assert embed.title is not None and embed.title.endswith("…")
    assert len(embed.title) > LIMITS["title"] * 3 // 4  # the title is cut, not dropped
    assert embed.description is not None and embed.description.endswith("…")
    assert embed.description.count("**") % 2 == 0  # no bold left open by the cut


def test_a_long_title_keeps_its_head_in_the_alert_and_in_article() -> None:
    title = "Officials said (in Kyiv) that talks - the second round - would go on " * 6
    art = Article(title=title, text="Troops moved.", source="wire")
    m = match_query("troops", art)
    assert m is not None
    alert = Alert(id=1, route="r", nonce="n", attempt=1, article=art, matches=(m,),
                  rules=(RuleConfig(name="troops", query="troops"),))
    for shown in (alert_message(alert)["embed"].title, article_embed(art, [m]).title):
        assert shown is not None and len(shown) <= LIMITS["title"]
        assert shown.endswith("…") and len(shown) > LIMITS["title"] * 3 // 4
        assert title.startswith(unescape(shown[:-1]))
        assert shown[-2] != " "  # ended at a word, not on a space


@given(title=TEXT, limit=st.integers(min_value=2, max_value=400),
       spans=st.lists(st.tuples(st.integers(0, 400), st.integers(1, 40)), max_size=4))
@settings(max_examples=300, deadline=None)
@example(title="\u202a", limit=3, spans=[])  # a direction control, shown as its code point
def test_rendered_runs_fit_and_show_a_head_of_the_title(
        title: str, limit: int, spans: list[tuple[int, int]]) -> None:
    from watchers.models import Highlight
    highlights = [Highlight(field="title", start=s, end=s + n, text=title[s:s + n])
                  for s, n in spans if s + n <= len(title)]
    runs = title_runs(title, highlights)
    shown = render_runs(runs, limit)
    assert len(shown) <= limit
    assert shown.count("**") % 2 == 0
    body = shown[:-1] if shown.endswith("…") and shown != escape(title) else shown
    assert not re.search(r"(?<!\\)(?:\\\\)*\\$", body)  # no dangling escape
    plain = unescape(body.replace("**", ""))
    squeezed = re.sub(r"\s+", " ", title).strip()
    # (a direction control is shown by its code point, "\u202a": a head of that spelling)
    spelt = unescape(escape(squeezed))
    assert squeezed.startswith(plain.strip()) or spelt.startswith(plain.strip()) \
        or "**" in shown
    if not highlights and len(escape(title)) > limit and limit >= 8:
        # a plain title too long is cut near the limit, never to a lone ellipsis
        assert len(shown) >= limit * 3 // 4 - 2


def test_a_matched_term_is_shown_whole_or_not_at_all() -> None:
    runs = [Run("word " * 10), Run("Kyiv", hit=True), Run(" after")]
    shown = render_runs(runs, 54)
    assert shown.endswith("…") and "**" not in shown and len(shown) <= 54
    assert render_runs(runs, 200) == "word " * 10 + "**Kyiv** after"


HOSTILE_URL_PARTS = st.text(alphabet="()[]<>\\\"' \tab:/.?#%=&*_~`|", max_size=60)


def test_link_model_sees_the_attack_it_guards_against() -> None:
    # the model must count what Discord renders, or the property below proves nothing
    naive = "[Title](https://ok.example/a)[text](https://phish.example/login)"
    assert masked_links(naive) == ["https://ok.example/a", "https://phish.example/login"]
    assert masked_links("\\[x\\](https://a.example)") == []


def test_a_url_cannot_add_a_second_masked_link() -> None:
    url = "https://ok.example/a)[text](https://phish.example/login"
    embed = results_embed("r", [(Article(title="Budget talks", url=url), None)], page=0,
                          pages=1, total=1)
    assert embed.description is not None
    (target,) = masked_links(embed.description)
    assert unquote(target) == url  # the same address, only encoded
    assert "phish" not in embed.description.replace(target, "")


@settings(max_examples=300, deadline=None)
@given(path=HOSTILE_URL_PARTS, host=st.sampled_from(["ok.example", "[2001:db8::1]", "a)b"]),
       title=st.text(max_size=80))
def test_no_article_yields_two_masked_links(path: str, host: str, title: str) -> None:
    url = f"https://{host}/{path}"
    art = Article(title=title, url=url)
    embed = results_embed("r", [(art, None)] * 3, page=0, pages=1, total=3)
    assert embed.description is not None
    for line in embed.description.splitlines():
        links = masked_links(line)
        assert len(links) <= 1, (url, line)
        target = link_target(url)
        if target is not None:
            # an unbalanced bracket in the (escaped) title can stop Discord linking at all,
            # which shows the text as written; it never makes another target appear
            assert links == [target] or (links == [] and re.search(r"[\[\]]", title))
            assert unquote(target) == unquote(url)
            assert target.startswith(f"https://{host}/")
            assert not re.search(r"[()\[\]<>\\\s]", target[len(f"https://{host}/"):])


def test_links_without_a_usable_url_fall_back_to_bold() -> None:
    assert masked_link("t", "javascript:alert(1)") == "**t**"
    assert masked_link("t", "https://a(b)/x") == "**t**"  # link syntax in the host itself
    assert masked_link("t", "https://[2001:db8::1]/x(1)") == "[t](https://[2001:db8::1]/x%281%29)"


# -- the 6,000-character total, whatever the parts hold ----------------------------------------

def _failing(i: int, url_len: int) -> SourceView:
    url = "https://news.example/rss/search?q=" + "x" * url_len + f"&feed={i}"
    state = SourceState(f"feed-{i}", failures=3, last_error=f"HTTP 503 from {url}: " + "y" * 400,
                        last_error_at=datetime(2026, 1, 1, tzinfo=UTC))
    return SourceView(f"google-news-ukraine-{i:02d}", "feed", url, timedelta(minutes=10),
                      "store", state, shared=False)


def test_stats_of_twenty_failing_sources_fit_the_total() -> None:
    """Twenty failing sources with long URLs in their errors: each field alone is within its
    limit, together they were 6,931 characters, which Discord refuses."""
    stats = Stats(articles=12, alerts={"delivered": 3},
                  sources=[_failing(i, 250) for i in range(20)],
                  paused_routes={f"route-{i}": "z" * 900 for i in range(3)})
    embed = stats_embed(stats)
    check_limits(embed)
    names = [f.name for f in embed.fields]
    assert names[:2] == ["Articles", "Alerts"]
    assert "google-news-ukraine-00 (feed)" in names  # cut, not emptied


def test_a_feed_servers_words_in_stats_make_no_link_or_mention() -> None:
    """A source's last error quotes what its server sent (a redirect's Location, an HTTP
    reason): shown as written, a feed could put a masked link of its own, or a mention,
    into the bot's /stats answer. A paused route's reason likewise."""
    hostile = ("https://wire.example/feed: HTTP 302 redirect to an invalid URL 'http://[Your "
               "feed key expired - re-login here](https://evil.example/phish)' @everyone")
    state = SourceState("wire", failures=2, last_error=hostile,
                        last_error_at=datetime(2026, 1, 1, tzinfo=UTC))
    stats = Stats(articles=1, alerts={}, sources=[SourceView(
        "wire", "feed", "https://wire.example/feed", timedelta(minutes=10), "config", state)],
        paused_routes={"alerts": "403 [Missing Access](https://evil.example/x)"})
    embed = stats_embed(stats)
    for field in embed.fields:
        assert masked_links(str(field.value)) == [], field.value
        assert "@everyone" not in str(field.value).replace("\\@everyone", "")
    assert any("evil" in str(f.value) for f in embed.fields)  # still shown, as text


def test_a_results_page_of_long_links_shows_every_result_and_no_broken_link() -> None:
    """Five results with links of 1,500 characters: the description was cut as a whole at
    4,096, inside the third link (raw markdown shown) and without the last two results, the
    footer still saying five. A line whose link would take more than its share shows its
    title without the link."""
    arts = [Article(title=f"Troops story {i}", url=f"https://news.example/{i}/" + "p" * 1500,
                    source="wire") for i in range(5)]
    short = Article(title="Short link story", url="https://news.example/s", source="wire")
    embed = results_embed("Search: troops", [(a, None) for a in [*arts, short]], page=0,
                          pages=1, total=6)
    check_limits(embed)
    description = embed.description or ""
    assert all(f"Troops story {i}" in description for i in range(5)), description[-300:]
    assert masked_links(description) == ["https://news.example/s"]
    assert "](https://news.example/0" not in description


def test_a_long_source_list_and_its_footer_fit_the_total() -> None:
    views = [SourceView(f"operator-feed-{i:03d}", "folder", f"/srv/feeds/{'d' * 60}/{i}",
                        timedelta(hours=1), "config", SourceState(f"operator-feed-{i:03d}"))
             for i in range(120)]
    embed = sources_embed(views)
    check_limits(embed)
    assert embed.description and embed.description.startswith("**operator\\-feed\\-000**")
    assert embed.footer.text and embed.footer.text.startswith("Shared with every server")


def test_a_rule_list_fits_the_total() -> None:
    views = [RuleView(RuleConfig(name=f"rule-{i:03d}", query=f"troops{i} OR " + "q" * 300),
                      None, i) for i in range(100)]
    embed = rules_embed(views)
    embed.set_footer(text=truncate("Global (every server, from the config file): "
                                   + ", ".join(v.rule.name for v in views), LIMITS["footer"]))
    check_limits(fit_embed(embed))
    assert embed.footer.text and embed.footer.text.startswith("Global")


def test_a_rule_list_longer_than_a_message_shows_whole_rules_and_counts_the_rest() -> None:
    # 20 rules of long queries: 17 were shown, the last cut mid-query, and nothing said three
    # were left out.
    views = [RuleView(RuleConfig(name=f"rule-{i:02d}", query=f"zebra{i} OR " + "x" * 240),
                      None, i) for i in range(20)]
    embed = rules_embed(views)
    check_limits(embed)
    assert embed.description is not None
    shown = embed.description.count("**rule\\-")
    assert 0 < shown < 20
    assert embed.description.rstrip().endswith("`")  # whole entries only
    assert embed.footer.text == (f"… and {20 - shown} more rules, not shown (the list is "
                                 "longer than a message holds)")
    few = rules_embed(views[:3])
    assert few.description is not None and few.description.count("**rule\\-") == 3
    assert not few.footer.text


def test_an_article_matched_by_many_wordy_rules_fits_the_total() -> None:
    words = [f"word{i:02d}" for i in range(40)]
    article = Article(id="a1", source="wire", title="Many words",
                      text=" ".join(words * 30), url="https://example.org/a")
    matches = [m for i in range(30) if (m := match_query(
        " OR ".join(words), article, name=f"rule-{i:02d}")) is not None]
    assert len(matches) == 30
    embed = article_embed(article, matches)
    check_limits(embed)
    assert embed.footer.text == "article a1"
    assert [f.name for f in embed.fields][:2] == ["Rule rule-00", "Rule rule-01"]
    # 25 fields at most: 24 rules shown, the last field names the 6 others
    assert len(embed.fields) == 25 and embed.fields[-1].name == "6 more rules matched"
    assert embed.fields[-1].value == ", ".join(f"rule\\-{i:02d}" for i in range(24, 30))


def test_an_article_matched_by_more_rules_than_fields_names_them_all() -> None:
    article = Article(id="a1", source="wire", title="Troops", text="troops")
    matches = [m for i in range(40)
               if (m := match_query("troops", article, name=f"r{i}")) is not None]
    embed = article_embed(article, matches)
    check_limits(embed)
    shown = [(f.name or "").removeprefix("Rule ") for f in embed.fields[:-1]]
    assert shown == [f"r{i}" for i in range(24)]
    assert embed.fields[-1].name == "16 more rules matched"
    assert embed.fields[-1].value == ", ".join(f"r{i}" for i in range(24, 40))
    exact = article_embed(article, matches[:25])  # exactly as many as fit: no summary field
    assert [f.name for f in exact.fields] == [f"Rule r{i}" for i in range(25)]
    now = datetime(2022, 1, 20, tzinfo=UTC)
    story = StoryRecord(id="s1", headline="Troops", first_seen=now, last_seen=now, articles=2,
                        outlets=("wire", "dw"))
    with_story = article_embed(article, matches[:25], story=story)  # the story takes a field
    assert [f.name for f in with_story.fields][-2:] == ["2 more rules matched", "Story"]


@settings(max_examples=60, deadline=None)
@given(description=st.text(max_size=4096), footer=st.text(max_size=2048),
       fields=st.lists(st.tuples(st.text(min_size=1, max_size=256),
                                 st.text(min_size=1, max_size=1024)), max_size=25))
def test_fit_embed_keeps_any_embed_inside_the_total(description: str, footer: str,
                                                    fields: list[tuple[str, str]]) -> None:
    embed = discord.Embed(title="t" * 256, description=description or None)
    embed.set_footer(text=footer or None)
    for name, value in fields:
        embed.add_field(name=name, value=value)
    before = len(embed)
    fitted = fit_embed(embed)
    assert len(fitted) <= LIMITS["total"]
    if before <= LIMITS["total"]:
        assert len(fitted) == before  # nothing cut that fitted
    elif fields == [] or sum(len(n) + len(v) for n, v in fields) < LIMITS["total"] - 1024 - 512:
        # what the fields leave room for is used: cut only as far as needed
        assert len(fitted) >= LIMITS["total"] - 2


@pytest.mark.parametrize("style", ["embed", "text"])
def test_a_rule_that_pings_a_hundred_roles_and_users_still_posts(style: TemplateStyle) -> None:
    """100 roles and 100 users spelt out need about 4,500 characters: Discord refused every
    such alert (content: 2,000 at most), and the alerts were lost. The config now refuses a
    rule whose mentions cannot fit, but an alert written before that (its rule kept in the
    outbox) still posts: the users first, then as many roles as fit; only those mentioned may
    ping."""
    art = Article(title="Troops", text="troops", source="wire", url="https://ok.example/a")
    m = match_query("troops", art)
    assert m is not None
    roles = list(range(1_000_000_000_000_000_001, 1_000_000_000_000_000_101))
    users = list(range(2_000_000_000_000_000_001, 2_000_000_000_000_000_101))
    # (as an outbox row of an older version holds it: past the config's check)
    rule = RuleConfig.model_construct(
        **{**RuleConfig(name="troops", query="troops",
                        template="{title} · {link}" if style == "text" else None,
                        template_style=style).model_dump(),
           "mention_roles": roles, "mention_users": users})
    alert = Alert(id=1, route="alerts", nonce="n", attempt=1, article=art, matches=(m,),
                  rules=(rule,))
    kwargs = alert_message(alert)
    content = kwargs["content"]
    assert len(content) <= LIMITS["content"]
    mentioned_roles = [int(x) for x in re.findall(r"<@&(\d+)>", content)]
    mentioned_users = [int(x) for x in re.findall(r"<@(\d+)>", content)]
    assert mentioned_users == users[: len(mentioned_users)] and len(mentioned_users) >= 30
    assert mentioned_roles == roles[: len(mentioned_roles)]
    assert not mentioned_roles or len(mentioned_users) == len(users)  # users first
    allowed = kwargs["allowed_mentions"]
    # (False: none may ping)
    assert [o.id for o in allowed.roles or []] == mentioned_roles
    assert [o.id for o in allowed.users or []] == mentioned_users
    if style == "text":
        assert "Troops" in content
    else:
        check_limits(kwargs["embed"], content)


def test_right_to_left_news_keeps_its_direction_marks_and_loses_its_overrides() -> None:
    """Hebrew and Arabic titles carry direction marks (U+200F, U+200E, U+061C), which reorder
    nothing: shown as escapes they were noise in every alert. An override or isolate reorders
    what follows it, and is shown as an escape."""
    title = ("\u05e9\u05dc\u05d5\u05dd\u200f (\u05e2\u05d5\u05d3\u05db\u05df)\u200e "
             "\u0645\u0631\u062d\u0628\u0627\u061c")
    assert escape(title) == title.replace("(", "\\(").replace(")", "\\)")
    # (the escape's backslash escaped for markdown: the message shows \u202e)
    assert escape("ops\u202eevil \u2067x\u2069") == "ops\\\\u202eevil \\\\u2067x\\\\u2069"


@pytest.mark.parametrize("style", ["text", "embed"])
def test_a_direction_override_in_a_link_is_encoded_never_applied(style: TemplateStyle) -> None:
    """"invoice\u202efdp.exe" showed as "invoiceexe.pdf" in a bare {link} and in the embed's
    link: a control or format character of a URL's path is percent-encoded (as a browser
    sends it), and a URL whose host holds one is not linked at all."""
    url = "https://bbc.example/troops/invoice\u202efdp.exe?x=\u200b#\u2066"
    assert safe_url(url) == link_target(url) == (
        "https://bbc.example/troops/invoice%E2%80%AEfdp.exe?x=%E2%80%8B#%E2%81%A6")
    assert unquote(safe_url(url) or "") == url  # the same address
    assert safe_url("https://bbc\u202e.example/x") is None
    assert safe_url("https://ok.example/\u041a\u0438\u0457\u0432") == (
        "https://ok.example/\u041a\u0438\u0457\u0432")  # letters of any script stay
    art = Article(title="Troops", text="troops", source="wire", url=url)
    m = match_query("troops", art)
    assert m is not None
    rule = RuleConfig(name="troops", query="troops", template_style=style,
                      template="{title}\n{link}" if style == "text" else None)
    kwargs = alert_message(Alert(id=1, route="alerts", nonce="n", attempt=1, article=art,
                                 matches=(m,), rules=(rule,)))
    shown = f"{kwargs.get('content')} {kwargs['embed'].to_dict() if kwargs.get('embed') else ''}"
    assert "\u202e" not in shown and "\u200b" not in shown and "\u2066" not in shown
    assert "invoice%E2%80%AEfdp.exe" in shown
