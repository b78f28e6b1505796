"""The story settings in a config: a route's table form, the story window, a rule's
min_sources — each wrong value named by its key path, in the form the user wrote it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.config.test_config import issues
from watchers.config import RouteConfig, load_config

RULE = '[[rules]]\nname = "r"\nquery = "troops"\nchannel = "briefing"\n'


def test_a_route_in_table_form_keeps_its_target_and_stories_mode(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text('[channels]\nalerts = 1\n[channels.briefing]\ntarget = "env:HOOK"\n'
                 'stories = "thread"\n[stories]\nwindow = "12h"\n' + RULE
                 + "min_sources = 3\n")
    cfg = load_config(p)
    assert cfg.targets == {"alerts": 1, "briefing": "env:HOOK"}
    assert cfg.route("briefing") == RouteConfig(target="env:HOOK", stories="thread")
    assert cfg.stories_mode("briefing") == "thread"
    assert cfg.stories_mode("alerts") == "edit"  # the short form follows stories by editing
    assert cfg.stories_mode("console-only") == "edit"
    assert cfg.route("nowhere") is None
    assert cfg.stories.window == timedelta(hours=12)
    assert cfg.rules[0].min_sources == 3


def test_wrong_story_settings_are_named_by_their_key_path(tmp_path: Path) -> None:
    found = issues('[channels.briefing]\nstories = "tread"\ncolour = 1\n[stories]\n'
                   'window = "soon"\n' + RULE + "min_sources = 0\n", tmp_path)
    joined = "\n".join(found)
    assert "channels.briefing.target: missing: this key is required here" in joined
    assert "channels.briefing.stories: Input should be 'edit', 'thread' or 'off'" in joined
    assert "channels.briefing.colour: unknown key" in joined
    assert "stories.window:" in joined and "soon" in joined
    assert "rules[0].min_sources:" in joined
    assert "route-table" not in joined and "route-ref" not in joined  # the union's inner tags


def test_a_bad_target_in_table_form_names_the_target_key(tmp_path: Path) -> None:
    found = issues('[channels.briefing]\ntarget = "not a webhook"\n' + RULE, tmp_path)
    assert any(f.startswith("channels.briefing.target: expected a channel id") for f in found)
