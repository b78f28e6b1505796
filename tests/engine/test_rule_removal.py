"""A rule added at run time stays removable when the config file later names another rule so
in another case: both run, and the refusal "defined in the config file" (names are told apart
without case) left the stored one with no way out. Through the real engine and SQLite file."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

import pytest

from tests.cli.test_cli import nw
from tests.conftest import SEEDS
from tests.fakes.sinks import RecordingSink
from watchers.config import parse_config
from watchers.engine import Engine, open_engine
from watchers.errors import NewswatchError
from watchers.store import SqliteStore


@pytest.mark.parametrize("guild", [None, 111])
async def test_a_stored_rule_is_removed_though_the_file_now_names_it_in_another_case(
        tmp_path: Path, guild: int | None) -> None:
    base = {"storage": {"path": "nw.db"}, "channels": {"alerts": 1}}
    first = parse_config({**base, "rules": [{"name": "other", "query": "x"}]},
                         base_dir=tmp_path)
    async with open_engine(first, start=False, default_sink=RecordingSink()) as engine:
        extra = {}
        if guild is not None:  # a server's rule posts to one of its own channels
            extra["channel"] = await engine.add_server_route(guild, 222, "alerts")
        await engine.add_rule({"name": "alpha", "query": "alpha", **extra}, guild=guild)
    later = parse_config({**base, "rules": [{"name": "Alpha", "query": "beta"}]},
                         base_dir=tmp_path)
    async with open_engine(later, start=False, default_sink=RecordingSink()) as engine:
        assert sorted(r.name for r in engine.watch.rules) == ["Alpha", "alpha"]
        assert await engine.remove_rule("alpha", guild=guild)
        assert [r.name for r in engine.watch.rules] == ["Alpha"]
        # the file's rule itself is still refused, whatever the case
        for typed in ("alpha", "ALPHA"):
            with pytest.raises(NewswatchError, match="defined in the config file"):
                await engine.remove_rule(typed, guild=guild)


async def test_a_wait_outlives_a_command_that_opens_the_store_with_another_config(
        tmp_path: Path) -> None:
    """Only a rule removed while the engine runs ends its alerts' waits: an import with a
    config naming no rule (or one with the rule disabled) does not remove it."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    base = {"storage": {"path": "nw.db"}, "channels": {"alerts": 1},
            "sources": [{"name": "seeds", "type": "folder", "path": "seeds", "settle": 0}]}
    rule = {"name": "troops", "query": "troops OR soldiers", "min_sources": 2}
    watching = parse_config({**base, "rules": [rule]}, base_dir=tmp_path)
    async with open_engine(watching, start=False, default_sink=RecordingSink()) as engine:
        await engine.run_once()
        waiting = (await engine.store.alert_counts()).get("waiting", 0)
        assert waiting >= 1
    for other in (parse_config({"storage": {"path": "nw.db"}}, base_dir=tmp_path,
                               watching=False),
                  parse_config({**base, "rules": [{**rule, "enabled": False}]},
                               base_dir=tmp_path)):
        async with open_engine(other, start=False, default_sink=RecordingSink()) as engine:
            assert (await engine.store.alert_counts()).get("waiting", 0) == waiting


def test_a_run_without_the_waiting_rule_ends_its_wait_and_an_import_does_not(
        tmp_path: Path) -> None:
    """`newswatch run` with a config file that no longer names (nor stores) a waiting alert's
    rule ends the wait at its start, and says so; `newswatch import` with that file does
    not (it delivers nothing, and its config may be another than run's). The real entry
    point, in subprocesses."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    head = ('[storage]\npath = "nw.db"\n[[sources]]\nname = "seeds"\ntype = "folder"\n'
            'path = "seeds"\nsettle = "0s"\n[[rules]]\nname = "other"\nquery = "football"\n')
    waiting_rule = '[[rules]]\nname = "troops"\nquery = "troops OR soldiers"\nmin_sources = 2\n'
    (tmp_path / "with.toml").write_text(head + waiting_rule)
    (tmp_path / "without.toml").write_text(head)
    (tmp_path / "disabled.toml").write_text(head + waiting_rule + "enabled = false\n")
    (tmp_path / "history.jsonl").write_text(
        '{"id": "h1", "title": "Old news", "text": "", "url": "https://x.example/1", '
        '"date": "2021-01-01T00:00:00Z", "source": "old"}\n')

    async def counts() -> dict[str, int]:
        store = await SqliteStore.open(tmp_path / "nw.db")
        try:
            return dict(await store.alert_counts())
        finally:
            await store.aclose()

    first = nw("run", "--once", "-c", "with.toml", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    waiting = asyncio.run(counts()).get("waiting", 0)
    assert waiting >= 1
    imported = nw("import", "history.jsonl", "-c", "without.toml", cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert asyncio.run(counts()).get("waiting", 0) == waiting
    paused = nw("run", "--once", "-c", "disabled.toml", cwd=tmp_path)  # disabled, not removed
    assert paused.returncode == 0, paused.stderr
    assert asyncio.run(counts()).get("waiting", 0) == waiting
    second = nw("run", "--once", "-c", "without.toml", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    after = asyncio.run(counts())
    assert after.get("waiting", 0) == 0 and after.get("rejected", 0) == waiting, after
    assert "will not post: their rules were removed" in second.stderr, second.stderr


@pytest.mark.parametrize(("name", "says"), [
    ("tr\u043e\u043eps", "mixes Cyrillic and Latin letters in one word"),  # Cyrillic o's
    ("\uff54\uff52\uff4f\uff4f\uff50\uff53", "compatibility characters (full-width or styled "
                                             "letters): write it 'troops'"),
])
async def test_a_rule_named_like_another_in_look_alike_letters_is_refused(
        tmp_path: Path, name: str, says: str) -> None:
    """"trооps" (Cyrillic o's) or "ｔｒｏｏｐｓ" (full-width) was saved beside the config file's
    "troops", the same in every list and autocomplete. Names of one script stay welcome."""
    cfg = parse_config({"storage": {"path": "nw.db"}, "channels": {"alerts": 1},
                        "rules": [{"name": "troops", "query": "troops"}]}, base_dir=tmp_path)
    async with open_engine(cfg, start=False, default_sink=RecordingSink()) as engine:
        with pytest.raises(NewswatchError, match=re.escape(says)):
            await engine.add_rule({"name": name, "query": "grain"})
        for fine in ("київ", "Ελλάδα", "naïve", "kyiv-київ"):
            await engine.add_rule({"name": fine, "query": "grain"})
        assert {r.name for r in await engine.store.list_rules()} == {
            "київ", "Ελλάδα", "naïve", "kyiv-київ"}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_rule_added_again_under_a_removed_ones_name_has_none_of_its_matches(
        tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    """The old rule's match stays its own: /article shows it by rule and score, and the new
    rule's matches, trend, feedback and newest article do not count it (they did: the matches
    are kept by the rule's name)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    storage = ({"path": "nw.db"} if backend == "sqlite"
               else {"url": request.getfixturevalue("pg_database")})
    cfg = parse_config({"storage": storage, "channels": {"alerts": 1},
                        "sources": [{"name": "inbox", "type": "folder", "path": "inbox",
                                     "settle": 0}]}, base_dir=tmp_path)

    async def desk(engine: Engine) -> tuple[int, int]:
        (view,) = [v for v in await engine.rules() if v.rule.name == "desk"]
        return view.matches_7d, view.alerts_7d

    sink = RecordingSink()
    async with open_engine(cfg, start=False, default_sink=sink) as engine:
        await engine.add_rule({"name": "desk", "query": "grizzly"})
        (inbox / "bear.txt").write_text("Bear news\nA grizzly was seen near Lviv.")
        await engine.run_once()
        ((old, _),) = await engine.recent(rule="desk")
        assert await desk(engine) == (1, 1)
        assert await engine.remove_rule("desk")
        await engine.add_rule({"name": "desk", "query": "zebra"})
        assert await desk(engine) == (0, 0)
        assert await engine.recent(rule="desk") == []
        assert (await engine.trend("desk")).total == 0
        found = await engine.article(old.id)
        assert found is not None
        assert [(m.rule, m.hits, m.score > 0) for m in found[1]] == [("desk", (), True)]
        (inbox / "zebra.txt").write_text("Zebra news\nA zebra was seen near Lviv.")
        await engine.run_once()
        assert [a.title for a, _ in await engine.recent(rule="desk")] == ["Zebra news"]
        assert await desk(engine) == (1, 1)
    async with open_engine(cfg, start=False, default_sink=RecordingSink()) as engine:
        assert await desk(engine) == (1, 1)
        assert (await engine.trend("desk")).total == 1
