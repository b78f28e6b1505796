"""Pure rendering: Discord's limits, escaping, and only http(s) links — for any article."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import discord
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.embeds import LIMITS, alert_message, article_embed, escape, results_embed, safe_url
from watchers.delivery import Alert, RuleInfo
from watchers.models import Article
from watchers.rules import match_query

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8000)


def unescape(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s)


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
                                      "ftp://x.example/", "data:text/html,hi"])))
def test_any_article_renders_inside_the_limits(title: str, text: str, source: str,
                                               url: str | None) -> None:
    art = Article(title=title or "t", text=text + " troops", source=source, url=url,
                  published=datetime(2022, 1, 24, tzinfo=UTC))
    m = match_query("troops", art)
    assert m is not None
    alert = Alert(id=1, route="alerts", nonce="n", attempt=1, article=art, matches=(m,),
                  rules=(RuleInfo("troops", "troops", "high", None),))
    kwargs = alert_message(alert)
    check_limits(kwargs["embed"], kwargs["content"])
    assert kwargs["allowed_mentions"].everyone is False
    check_limits(article_embed(art, [m]))
    check_limits(results_embed("q" * 300, [(art, m)] * 5, page=0, pages=1, total=5))


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
                  rules=(RuleInfo("troops", "troops"),))
    embed = alert_message(alert)["embed"]
    assert embed.title is not None and embed.title.endswith("…")
    assert embed.description is not None and embed.description.endswith("…")
    assert embed.description.count("**") % 2 == 0  # no bold left open by the cut
