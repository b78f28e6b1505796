"""Pure rendering: Discord's limits, escaping, and only http(s) links — for any article, and
never more than one masked link per result whatever the article's URL holds."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import unquote

import discord
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.embeds import (
    LIMITS,
    alert_message,
    article_embed,
    escape,
    link_target,
    masked_link,
    results_embed,
    safe_url,
)
from watchers.config import RuleConfig
from watchers.delivery import Alert
from watchers.models import Article
from watchers.rules import match_query

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
    assert embed.description is not None and embed.description.endswith("…")
    assert embed.description.count("**") % 2 == 0  # no bold left open by the cut


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
