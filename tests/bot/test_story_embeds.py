"""Rendering stories (pure): the story line and the escalation banner on an alert, the edit and
repost parameters, thread names and lines, and the console's story lines. Whatever the outlets
and articles hold, everything stays inside Discord's limits, pings nobody on an update and
yields at most one masked link per article."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import discord
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.console import ConsoleSink, render_card
from bot.embeds import (
    alert_message,
    escalation_line,
    story_line,
    story_message,
    thread_line,
    thread_name,
)
from tests.bot.test_embeds import check_limits, masked_links
from watchers.config import RuleConfig, Severity
from watchers.delivery import Alert, StoryUpdate, StoryView
from watchers.models import Article
from watchers.rules import match_query

T0 = datetime(2022, 2, 24, 4, 0, tzinfo=UTC)


def make_alert(*, source: str = "Reuters", title: str = "Troops cross the border",
               severity: Severity = "high", story: StoryView | None = None,
               escalated_from: str | None = None, role: int | None = None) -> Alert:
    art = Article(id="a1", source=source, title=title, text="Troops moved at dawn.",
                  url="https://reuters.example/1", published=T0)
    m = match_query("troops", art)
    assert m is not None
    rule = RuleConfig(name="troops", query="troops", severity=severity,
                      mention_role=role)
    return Alert(id=1, route="alerts", nonce="n", attempt=1, article=art, matches=(m,),
                 rules=(rule,), story=story, escalated_from=escalated_from)


def view(outlets: tuple[str, ...], articles: int | None = None,
         updated_at: datetime | None = None) -> StoryView:
    return StoryView(id="s", headline="Troops cross the border", first_seen=T0,
                     last_seen=T0 + timedelta(hours=2), outlets=outlets,
                     articles=len(outlets) if articles is None else articles,
                     updated_at=updated_at)


def update_for(alert: Alert, newest: Article, story: StoryView, *, changed: bool = False
               ) -> StoryUpdate:
    return StoryUpdate(id=2, route="alerts", nonce="u", attempt=1, mode="edit", story=story,
                       alert=alert, article=newest, message_id="1", changed=changed)


def field(embed: discord.Embed, name: str) -> str | None:
    return next((str(f.value) for f in embed.fields if f.name == name), None)


def test_story_line_names_the_other_outlets_and_counts() -> None:
    stamp = int((T0 + timedelta(hours=2)).timestamp())
    assert story_line(view(("Reuters", "DW", "NPR")), own="Reuters") == (
        f"Also reported by DW, NPR · 3 outlets · updated <t:{stamp}:t>")
    # one outlet that re-posted: no "also", but the article count
    assert story_line(view(("Reuters",), articles=2), own="Reuters") == (
        f"2 articles · updated <t:{stamp}:t>")
    # a later change in place is the time shown
    later = T0 + timedelta(hours=5)
    line = story_line(view(("Reuters", "DW"), updated_at=later), own="Reuters")
    assert line is not None and line.endswith(f"<t:{int(later.timestamp())}:t>")
    assert story_line(view(("Reuters",)), own="Reuters") is None


def test_many_outlets_are_cut_with_a_count_and_stay_inside_the_limits() -> None:
    outlets = tuple(f"Outlet number {i} with a rather long name" for i in range(300))
    story = view(("Reuters", *outlets))
    line = story_line(story, own="Reuters")
    assert line is not None and " more · 301 outlets · " in line
    shown = line.split(" and ")[0].removeprefix("Also reported by ").split(", ")
    assert shown[0] == outlets[0] and 1 < len(shown) < 300
    assert line.split(" and ")[1].startswith(f"{300 - len(shown)} more")
    kwargs = alert_message(make_alert(story=story))
    check_limits(kwargs["embed"], kwargs["content"])


def test_alert_shows_its_story_and_escalation() -> None:
    plain = alert_message(make_alert())["embed"]
    assert field(plain, "Story") is None and "Escalated" not in (plain.description or "")
    alert = make_alert(severity="critical", escalated_from="medium",
                       story=view(("Reuters", "DW")))
    assert escalation_line(alert) == "Escalated: medium → critical"
    embed = alert_message(alert)["embed"]
    assert (embed.description or "").startswith("**Escalated: medium → critical**\n")
    assert (field(embed, "Story") or "").startswith("Also reported by DW · 2 outlets")


def test_edit_keeps_content_and_pings_nobody_repost_has_no_content() -> None:
    alert = make_alert(role=42)
    assert alert_message(alert)["content"] == "<@&42>"
    newest = Article(id="a2", source="DW", title="Troops at the border, DW says",
                     url="https://dw.example/2")
    upd = update_for(alert, newest, view(("Reuters", "DW")))
    edit = story_message(upd)
    assert "content" not in edit  # the message's content (its role mention) is left alone
    repost = story_message(upd, repost=True)
    assert repost["content"] is None
    for kwargs in (edit, repost):
        mentions = kwargs["allowed_mentions"].to_dict()
        assert mentions == {"parse": []}
        story = field(kwargs["embed"], "Story") or ""
        assert "Newest: [Troops at the border, DW says](https://dw.example/2) · DW" in story
    changed = story_message(update_for(alert, newest, view(("Reuters", "DW")), changed=True))
    assert "Updated: [Troops at the border, DW says](https://dw.example/2)" in (
        field(changed["embed"], "Story") or "")


OUTLET = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=300)


@settings(max_examples=100, deadline=None)
@given(outlets=st.lists(OUTLET, min_size=1, max_size=60, unique=True),
       title=st.text(max_size=3000), source=st.text(max_size=300),
       url=st.one_of(st.none(), st.text(max_size=30),
                     st.builds("https://ok.example/{}".format, st.text(max_size=2500))),
       changed=st.booleans())
def test_any_story_update_renders_inside_the_limits(outlets: list[str], title: str, source: str,
                                                    url: str | None, changed: bool) -> None:
    newest = Article(id="a2", source=source, title=title, url=url)
    upd = update_for(make_alert(role=7), newest, view(tuple(outlets), articles=200),
                     changed=changed)
    for kwargs in (story_message(upd), story_message(upd, repost=True)):
        check_limits(kwargs["embed"], kwargs.get("content"))
        story = field(kwargs["embed"], "Story")
        assert story is not None and len(masked_links(story)) <= 1
    line = thread_line(upd)
    assert 0 < len(line["content"]) <= 2000 and len(masked_links(line["content"])) <= 1
    assert line["allowed_mentions"].to_dict() == {"parse": []}
    name = thread_name(title)
    assert 1 <= len(name) <= 100 and "\n" not in name


@pytest.mark.parametrize("path_length", [1600, 1880, 1990])
def test_a_thread_line_never_cuts_through_its_link(path_length: int) -> None:
    """A 300-character title, a 100-character outlet and a 1,987-character link were cut at
    2,000 characters through the link: no closing parenthesis, raw markdown in the thread. The
    title gives way to the link, and a link with no room left is dropped for the bold title."""
    url = "https://npr.example/" + "a" * path_length
    title = "Satellite images show troops " * 12
    for changed in (False, True):
        newest = Article(id="a2", source="N" * 120, title=title, url=url)
        content = thread_line(update_for(make_alert(), newest, view(("Reuters", "X")),
                                         changed=changed))["content"]
        assert len(content) <= 2000
        links = masked_links(content)
        if links:
            assert links == [url] and content.count("](") == 1
            assert content.endswith(f"]({url})" + (" (" + "N" * 99 + "…)" if changed else ""))
        else:
            assert url not in content and "](" not in content and "**Satellite" in content
    assert masked_links(thread_line(update_for(
        make_alert(), Article(id="a2", source="npr", title=title, url=url[:1800]),
        view(("Reuters", "X"))))["content"]) == [url[:1800]]


def test_thread_line_shows_hostile_titles_as_written() -> None:
    newest = Article(id="a2", source="@everyone", url="https://x.example/2",
                     title="[click](https://phish.example) <@&1> @here")
    line = thread_line(update_for(make_alert(), newest, view(("Reuters", "X"))))
    assert masked_links(line["content"]) == ["https://x.example/2"]
    assert line["suppress_embeds"] is True
    assert "\\@everyone" in line["content"] and "\\<\\@&1\\>" in line["content"]
    changed = thread_line(update_for(make_alert(), newest, view(("Reuters", "X")), changed=True))
    assert changed["content"].startswith("Updated: [")


def test_console_card_and_update_lines() -> None:
    alert = make_alert(escalated_from="low", story=view(("Reuters", "DW", "NPR")))
    card = render_card(alert)
    assert "escalated: low → high" in card
    assert "story: also reported by DW, NPR · 3 outlets" in card
    assert "story:" not in render_card(make_alert(story=view(("Reuters",))))


async def test_console_sink_prints_one_line_per_update() -> None:
    out = io.StringIO()
    sink = ConsoleSink(out, ansi=False)
    alert = make_alert()
    newest = Article(id="a2", source="DW", title="Troops at the border, DW says",
                     url="https://dw.example/2")
    result = await sink.update(update_for(alert, newest, view(("Reuters", "DW"))))
    assert (result.message_id, result.thread_id, result.reposted) == ("1", None, False)
    await sink.update(update_for(alert, newest, view(("Reuters", "DW")), changed=True))
    first, second = out.getvalue().splitlines()
    assert first == ("  ↳ DW: Troops at the border, DW says · also reported by DW · 2 outlets"
                     "  https://dw.example/2")
    assert second == "  ↳ updated: Troops at the border, DW says  https://dw.example/2"
    assert sink.count == 0  # updates are not alerts
