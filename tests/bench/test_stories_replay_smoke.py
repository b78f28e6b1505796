"""The story replay (``bench/stories_replay.py``) on its first 300 headlines: both runs go
through the real engine, DeliveryService, DiscordSink and the emulator, and what the report
says must add up — one message per story that fired with ``edit``, one per firing article with
``off``, the same stories either way, every request valid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench._bench import bench_module
from tests.conftest import CORPORA, corpora_or_skip
from tests.fakes.discord_spec import spec_available

HEADLINES = 300


def _corpus() -> Path:
    path = corpora_or_skip() / "articles" / "reddit_news_headlines_2021_2022.jsonl"
    if not path.is_file():
        pytest.skip(f"the Reddit headlines are not in {CORPORA / 'articles'}")
    return path


async def test_replay_report_adds_up(tmp_path: Path) -> None:
    mod = bench_module("stories_replay")
    records = mod.load(_corpus(), HEADLINES)
    edit = await mod.replay(records, "edit", 15, tmp_path)
    off = await mod.replay(records, "off", 15, tmp_path)

    for fig in (edit, off):
        assert fig.articles == HEADLINES
        assert fig.stored + fig.duplicates + fig.updated == HEADLINES
        assert fig.notice_rows == 0 and fig.reposted == 0
        assert 0 < fig.fired <= fig.stored
        if spec_available():
            assert fig.spec_problems == 0, fig.first_problems
    # Grouping does not depend on how the route shows stories.
    for name in ("stored", "fired", "stories", "multi_outlet", "fired_stories", "fired_multi",
                 "fired_articles_in_multi"):
        assert getattr(edit, name) == getattr(off, name), name
    assert edit.fired_multi > 0, "no multi-outlet story fired: the smoke run tests nothing"

    # off: every firing article is a message of its own.
    assert off.posts == off.alert_rows == off.fired and off.patches == off.update_rows == 0
    assert off.messages_multi == off.fired_articles_in_multi

    # edit: a story's first firing article posts, its later ones edit that message.
    assert edit.posts == edit.alert_rows == edit.fired_stories
    assert edit.patches == edit.update_rows
    assert edit.update_rows - edit.changed_rows == edit.fired - edit.fired_stories
    assert edit.messages_multi == edit.fired_multi and edit.per_story == 1.0
    assert edit.most_messages == 1
    assert off.per_story > edit.per_story
    assert edit.articles_per_message > 1.0
    assert off.articles_per_message == 1.0


def test_json_output_is_one_object_per_run(capsys: pytest.CaptureFixture[str]) -> None:
    mod = bench_module("stories_replay")
    assert mod.main(["--corpus", str(_corpus()), "--limit", "40", "--modes", "off",
                     "--json"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    run = json.loads(line)
    assert run["mode"] == "off" and run["articles"] == 40
    assert run["posts"] == run["fired"]


def test_a_bad_line_is_named(tmp_path: Path) -> None:
    mod = bench_module("stories_replay")
    bad = tmp_path / "bad.jsonl"
    good = {"id": "x1", "title": "A headline", "date": "2022-01-01T00:00:00+00:00",
            "domain": "example.org", "url": "https://example.org/1"}
    bad.write_text(json.dumps(good) + "\n" + json.dumps({**good, "date": "yesterday"}) + "\n",
                   encoding="utf-8")
    with pytest.raises(mod.ReplayError, match=r"bad\.jsonl:2: not a headline record"):
        mod.load(bad, None)
    with pytest.raises(SystemExit, match=r"bad\.jsonl:2"):
        mod.main(["--corpus", str(bad)])
