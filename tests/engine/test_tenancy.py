"""Per-server tenancy at the engine: a server's rules and mutes are its own, keyed apart from
another server's of the same name; the config file's rules are shared and cannot be shadowed;
lookups made for a server show only the rules it sees; limits per server; the stored rules
come back with their server after a restart."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SEEDS
from tests.fakes.sinks import RecordingSink
from watchers.config import Config, RuleConfig, parse_config
from watchers.engine import Engine, open_engine
from watchers.errors import ConfigError, NewswatchError

A, B = 111, 222


def config(tmp_path: Path, **discord: Any) -> Config:
    return parse_config({
        "storage": {"path": "nw.db"},
        "discord": discord,
        "channels": {"alerts": 1, "desk": 2},
        "sources": [{"name": "seeds", "type": "folder", "path": "seeds", "settle": 0}],
        "rules": [{"name": "troops", "query": "troops OR soldiers"}],
    }, base_dir=tmp_path)


async def server_rule(engine: Engine, fields: dict[str, Any], guild: int) -> RuleConfig:
    """A rule of ``guild`` posting to one of its channels (named by ``fields["channel"]``, as
    the channel picker would make it)."""
    name = str(fields.get("channel", "news"))
    key = await engine.add_server_route(guild, guild * 100 + len(name), name)
    return await engine.add_rule({**fields, "channel": key}, guild=guild)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    async with open_engine(config(tmp_path), start=False) as e:
        yield e


async def test_two_servers_each_have_a_rule_of_the_same_name_apart(engine: Engine) -> None:
    a = await server_rule(engine, {"name": "kyiv", "query": "kyiv~"}, A)
    b = await server_rule(engine, {"name": "kyiv", "query": "sanctions", "channel": "desk"}, B)
    assert (a.key, b.key) == (f"{A}:kyiv", f"{B}:kyiv")
    assert (a.guild_id, b.guild_id) == (A, B)
    # each server sees the shared rule and its own, by name; never the other's
    assert engine.rule_names(A) == engine.rule_names(B) == ["kyiv", "troops"]
    assert [(v.rule.query, v.is_global) for v in await engine.rules(A)] == [
        ("kyiv~", False), ("troops OR soldiers", True)]
    assert [v.rule.query for v in await engine.rules(B)] == ["sanctions", "troops OR soldiers"]
    # the CLI sees every rule, by key
    assert engine.rule_names() == [f"{A}:kyiv", f"{B}:kyiv", "troops"]
    assert len(await engine.rules()) == 3
    # both run, each under its key
    await engine.run_once()
    a_hits = await engine.recent(rule="kyiv", guild=A, limit=50)
    b_hits = await engine.recent(rule="kyiv", guild=B, limit=50)
    assert a_hits and b_hits
    assert {art.id for art, _ in a_hits} != {art.id for art, _ in b_hits}
    for hits in (a_hits, b_hits):
        for _, matches in hits:
            assert {m.rule for m in matches} <= {"kyiv", "troops"}  # names, never keys
    for _, matches in await engine.recent(rule=f"{A}:kyiv", limit=50):
        assert f"{A}:kyiv" in {m.rule for m in matches}


async def test_a_server_cannot_see_change_or_mute_another_servers_rule(engine: Engine) -> None:
    await server_rule(engine, {"name": "kyiv", "query": "kyiv~"}, A)
    await engine.run_once()
    for call in (engine.mute("kyiv", timedelta(hours=1), guild=B),
                 engine.unmute("kyiv", guild=B),
                 engine.recent(rule="kyiv", guild=B)):
        with pytest.raises(NewswatchError, match="no rule named 'kyiv'"):
            await call
    # nor by its key
    with pytest.raises(NewswatchError, match="no rule named"):
        await engine.mute(f"{A}:kyiv", timedelta(hours=1), guild=B)
    assert not await engine.remove_rule("kyiv", guild=B)
    assert engine.rule_names(A) == ["kyiv", "troops"]
    # B's lookups never show A's rule's matches, nor articles only A's rule matched
    for art, matches in await engine.recent(guild=B, limit=50):
        assert [m.rule for m in matches] == ["troops"], art.id
    only_a = {art.id for art, ms in await engine.recent(limit=50)
              if {m.rule for m in ms} == {f"{A}:kyiv"}}
    assert only_a, "the seeds should have an article only kyiv matches"
    for art_id in only_a:
        found = await engine.article(art_id, guild=B)
        assert found is not None and found[1] == []
        found = await engine.article(art_id, guild=A)
        assert found is not None and [m.rule for m in found[1]] == ["kyiv"]


async def test_mutes_are_by_key(engine: Engine) -> None:
    await server_rule(engine, {"name": "kyiv", "query": "kyiv~"}, A)
    await server_rule(engine, {"name": "kyiv", "query": "kyiv~"}, B)
    until = await engine.mute("kyiv", timedelta(hours=1), guild=A)
    assert {v.rule.key: v.muted_until for v in await engine.rules()} == {
        f"{A}:kyiv": until, f"{B}:kyiv": None, "troops": None}
    assert not await engine.unmute("kyiv", guild=B)
    assert await engine.unmute("kyiv", guild=A)
    # a global rule muted from a server is muted for everyone
    await engine.mute("troops", timedelta(hours=1), guild=B)
    assert [v.muted_until is not None for v in await engine.rules(A) if v.is_global] == [True]


async def test_a_servers_muted_rule_posts_nothing_while_another_servers_does(
        engine: Engine) -> None:
    await server_rule(engine, {"name": "kyiv", "query": "kyiv~", "channel": "desk"}, A)
    await server_rule(engine, {"name": "kyiv", "query": "kyiv~", "channel": "alerts"}, B)
    await engine.mute("kyiv", timedelta(hours=1), guild=A)
    engine.watch.regex_budget = 10.0
    reports = await engine.watch.run_once()
    assert sum(r.alerts for r in reports) > 0
    rows = await engine.store.alerts(kind="alert")
    posted = {(row.route, tuple(r.key for r in row.rules)) for row in rows
              if row.state != "suppressed"}
    assert not any(route == f"{A}:desk" for route, _ in posted)
    assert any(f"{B}:kyiv" in keys for _, keys in posted)
    # the outbox keeps each rule as it matched, server and all
    assert any(r.guild_id == B for row in rows for r in row.rules)


async def test_a_server_rule_cannot_shadow_a_global_one(engine: Engine) -> None:
    with pytest.raises(ConfigError, match="defined in the config file") as err:
        await server_rule(engine, {"name": "troops", "query": "tanks"}, A)
    assert err.value.issues[0].path == "name"
    # nor a global one added without a server
    await engine.add_rule({"name": "shared", "query": "tanks"})
    with pytest.raises(ConfigError, match="shared by every server"):
        await server_rule(engine, {"name": "shared", "query": "tanks"}, A)
    with pytest.raises(NewswatchError, match="shared by every server"):
        await engine.remove_rule("shared", guild=A)
    with pytest.raises(NewswatchError, match="config file"):
        await engine.remove_rule("troops", guild=A)
    assert engine.rule_names(A) == ["shared", "troops"]


async def test_a_rule_name_in_another_case_is_the_same_name(engine: Engine) -> None:
    """"Troops" sat beside the config file's "troops", and "Kyiv" beside a server's "kyiv":
    two rules that a forum's tags (compared without case) and a team take for one."""
    with pytest.raises(ConfigError, match=r"rule 'troops' is defined in the config file "
                       r"\(names are compared without case\)"):
        await engine.add_rule({"name": "Troops", "query": "tanks"})
    await engine.add_rule({"name": "shared", "query": "tanks"})
    with pytest.raises(ConfigError, match=r"rule 'shared' is shared by every server \(names"):
        await server_rule(engine, {"name": "SHARED", "query": "tanks"}, A)
    with pytest.raises(ConfigError, match=r"a rule 'shared' exists \(names are compared"):
        await engine.add_rule({"name": "Shared", "query": "tanks"})
    await server_rule(engine, {"name": "kyiv", "query": "kyiv~", "channel": "desk"}, A)
    with pytest.raises(ConfigError, match=r"a rule 'kyiv' exists .*use its name as it is spelt"):
        await server_rule(engine, {"name": "Kyiv", "query": "kiev", "channel": "desk"}, A)
    # another server's rules are its own; the same spelling replaces
    await server_rule(engine, {"name": "Kyiv", "query": "kyiv~", "channel": "alerts"}, B)
    await server_rule(engine, {"name": "kyiv", "query": "kiev", "channel": "desk"}, A)
    assert sorted(n for n in engine.rule_names(A) if n.casefold() == "kyiv") == ["kyiv"]


async def test_one_servers_slow_regex_leaves_another_servers_rules_their_time(
        engine: Engine, tmp_path: Path) -> None:
    """A server's rules come first (their keys sort so): one server's catastrophic regex spent
    the article's whole time, and another server's regex rule, and the config file's, never
    matched — reported as their own time-outs in /rules list."""
    await server_rule(engine, {"name": "noise", "query": "/(a|aa)+$/"}, A)
    await server_rule(engine, {"name": "watch", "query": "/border guards?/"}, B)
    await engine.add_rule({"name": "rx", "query": "/guards? at the border/"})
    for p in (tmp_path / "seeds").iterdir():
        p.unlink()
    (tmp_path / "seeds" / "slow.txt").write_text(
        "Guards at the border\n\nBorder guards were seen. " + "a" * 60 + "!")
    engine.watch.regex_budget = 0.05
    await engine.run_once()
    found = {m.rule for _, matches in await engine.recent(limit=5) for m in matches}
    assert found == {f"{B}:watch", "rx"}
    assert dict(engine.watch.over_budget) == {f"{A}:noise": 1}


async def test_a_server_may_not_set_its_own_id_nor_another_servers(engine: Engine) -> None:
    # Refused, naming the key (it was silently replaced, which made a global rule of one
    # given a server's id).
    with pytest.raises(ConfigError, match="guild_id: set by newswatch itself"):
        await server_rule(engine, {"name": "kyiv", "query": "kyiv~", "guild_id": B}, A)
    with pytest.raises(ConfigError, match="guild_id: set by newswatch itself"):
        await engine.add_rule({"name": "free", "query": "kyiv~", "guild_id": B})
    assert engine.rule_names() == ["troops"]
    rule = await server_rule(engine, {"name": "kyiv", "query": "kyiv~"}, A)
    assert rule.guild_id == A


async def test_the_config_file_may_not_set_a_rules_server(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"rules": [{"name": "x", "query": "kyiv", "guild_id": 5}]})
    assert [(i.path, i.message) for i in err.value.issues] == [
        ("rules[0].guild_id", "set by newswatch itself, not in a file")]


async def test_rules_per_server_are_limited_with_a_clear_refusal(tmp_path: Path) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    async with open_engine(config(tmp_path, max_rules_per_server=2), start=False) as engine:
        await server_rule(engine, {"name": "one", "query": "kyiv"}, A)
        await server_rule(engine, {"name": "two", "query": "kyiv"}, A)
        with pytest.raises(ConfigError, match=r"max_rules_per_server = 2"):
            await server_rule(engine, {"name": "three", "query": "kyiv"}, A)
        # replacing one of its rules is not a new rule; another server has its own allowance
        await server_rule(engine, {"name": "two", "query": "sanctions"}, A)
        await server_rule(engine, {"name": "three", "query": "kyiv"}, B)
        # nor do rules without a server count
        await engine.add_rule({"name": "cli", "query": "kyiv"})
        assert engine.rule_names(A) == ["cli", "one", "troops", "two"]
        assert await engine.remove_rule("one", guild=A)
        await server_rule(engine, {"name": "three", "query": "kyiv"}, A)


async def test_server_rules_come_back_with_their_server_after_a_restart(tmp_path: Path
                                                                        ) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    async with open_engine(config(tmp_path), start=False) as engine:
        await server_rule(engine, {"name": "kyiv", "query": "kyiv~"}, A)
        await server_rule(engine, {"name": "kyiv", "query": "sanctions"}, B)
        await engine.add_rule({"name": "old", "query": "kyiv"})
        await engine.mute("kyiv", timedelta(hours=1), guild=B)
    con = sqlite3.connect(tmp_path / "nw.db")
    try:
        rows = con.execute("SELECT name, guild_id FROM rules ORDER BY name").fetchall()
    finally:
        con.close()
    assert rows == [(f"{A}:kyiv", A), (f"{B}:kyiv", B), ("old", None)]
    async with open_engine(config(tmp_path), start=False) as engine:
        assert [(v.rule.key, v.muted_until is not None) for v in await engine.rules()] == [
            (f"{A}:kyiv", False), (f"{B}:kyiv", True), ("old", False), ("troops", False)]
        assert [v.rule.query for v in await engine.rules(B) if not v.is_global] == ["sanctions"]
        assert await engine.remove_rule("kyiv", guild=B)
        assert engine.rule_names() == [f"{A}:kyiv", "old", "troops"]


def test_a_rules_key_is_its_name_without_a_server() -> None:
    assert RuleConfig(name="x", query="kyiv").key == "x"
    assert RuleConfig(name="x", query="kyiv", guild_id=7).key == "7:x"


async def test_a_trend_of_a_server_rule_is_by_name_in_that_server(engine: Engine) -> None:
    await server_rule(engine, {"name": "kyiv", "query": "kyiv~"}, A)
    await engine.run_once()
    mine = await engine.trend("kyiv", guild=A)
    assert mine.label == "rule kyiv"
    by_key = await engine.trend(f"{A}:kyiv")  # the CLI names it by key
    assert by_key.label == f"rule {A}:kyiv" and by_key.points == mine.points
    # in B "kyiv" is no rule of its: a query, counted by search
    assert (await engine.trend("kyiv", guild=B)).label == "kyiv"
    assert (await engine.trend(f"{A}:kyiv", guild=B)).label != f"rule {A}:kyiv"


async def test_alerts_and_feedback_are_counted_per_server_rule(tmp_path: Path) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    sink = RecordingSink()
    async with open_engine(config(tmp_path), start=False, default_sink=sink) as engine:
        await server_rule(engine, {"name": "kyiv", "query": "kyiv~"}, A)
        await server_rule(engine, {"name": "kyiv", "query": "troops"}, B)
        await engine.run_once()
        rows = [row for row in await engine.store.alerts(kind="alert")
                if any(r.key == f"{A}:kyiv" for r in row.rules)]
        assert rows and all(row.state == "delivered" for row in rows)
        await engine.not_relevant(rows[0].id, 5)
        views = {v.rule.key: v for v in await engine.rules()}
        mine, theirs = views[f"{A}:kyiv"], views[f"{B}:kyiv"]
        assert (mine.alerts_7d, mine.not_relevant_7d) == (len(rows), 1)
        assert theirs.not_relevant_7d == 0 and theirs.alerts_7d > 0
        assert mine.matches_7d > 0 and theirs.matches_7d > 0


async def test_a_server_that_removed_the_bot_has_its_rules_kept_but_not_run(
        engine: Engine) -> None:
    await server_rule(engine, {"name": "kyiv", "query": "kyiv~"}, A)
    await server_rule(engine, {"name": "kyiv", "query": "sanctions"}, B)
    assert await engine.left(B) and not await engine.left(B)
    assert sorted(r.key for r in engine.watch.rules) == [f"{A}:kyiv", "troops"]
    assert {r.key for r in await engine.store.list_rules()} == {f"{A}:kyiv", f"{B}:kyiv"}
    assert await engine.returned(B) and not await engine.returned(B)
    assert sorted(r.key for r in engine.watch.rules) == [f"{A}:kyiv", f"{B}:kyiv", "troops"]


async def test_a_server_that_removed_the_bot_adds_nothing_that_would_run(
        engine: Engine) -> None:
    """A /rules add, /sources add or channel pick under way when the bot was removed (or a
    long OPML import) went on adding: the rule ran, the channel was served and the feed
    fetched for a server that had left, until the next restart. Each is refused now, and
    nothing is stored; once the server is back, it adds as before."""
    await server_rule(engine, {"name": "kyiv", "query": "kyiv~"}, B)
    await engine.left(B)
    rules, routes = {r.key for r in engine.watch.rules}, set(engine.tenancy.routes)
    stored = {r.key for r in await engine.store.list_rules()}
    for attempt in (
            lambda: engine.add_server_route(B, 4242, "late"),
            lambda: engine.add_rule({"name": "late", "query": "troops"}, guild=B,
                                    picked=(4243, "later")),
            lambda: engine.replace_rule({"name": "kyiv", "query": "grain"}, guild=B),
            lambda: engine.add_source({"name": "wire", "url": "https://wire.example/feed"},
                                      guild=B)):
        with pytest.raises(NewswatchError, match="this server is not served now"):
            await attempt()
    assert {r.key for r in engine.watch.rules} == rules and set(engine.tenancy.routes) == routes
    assert {r.key for r in await engine.store.list_rules()} == stored
    assert engine.tenancy.follows_of(B) == {}
    assert not [v for v in await engine.sources(B) if v.name == "wire"]
    await engine.returned(B)
    assert (await server_rule(engine, {"name": "late", "query": "troops"}, B)).key == f"{B}:late"


async def test_a_join_during_the_check_at_connect_is_not_undone_by_it(engine: Engine) -> None:
    """At connect the bot compares its servers with the stored ones while Discord may already
    say it joined one: the check asks who is in after reading the store, and the two take
    turns, so the join wins rather than an older answer."""
    await server_rule(engine, {"name": "kyiv", "query": "sanctions"}, B)
    await engine.left(B)
    members = {A}
    check = asyncio.create_task(engine.present_in(lambda: set(members)))
    await asyncio.sleep(0)  # the check is reading the store
    members.add(B)  # Discord: the bot joined B (its cache first, then the event)
    assert not await engine.returned(B)  # the check took it back already, in its turn
    assert await check == ([], [B])
    assert B not in engine.departed and f"{B}:kyiv" in {r.key for r in engine.watch.rules}
    # and a server with stored rules that the bot is not in has left
    members.discard(B)
    assert await engine.present_in(lambda: set(members)) == ([B], [])
    assert B in engine.departed


async def test_a_departure_stored_by_a_process_killed_before_applying_it_holds_at_start(
        tmp_path: Path) -> None:
    """``left`` stores the departure first, then stops the server's rules and feeds: killed in
    between, the next start reads it and runs nothing of that server's."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    async with open_engine(config(tmp_path), start=False) as e:
        await server_rule(e, {"name": "kyiv", "query": "kyiv~"}, A)
        await server_rule(e, {"name": "kyiv", "query": "sanctions"}, B)
        await e.store.set_departed(B, datetime.now(UTC))  # stored; the process dies here
    async with open_engine(config(tmp_path), start=False) as e:
        assert B in e.departed
        assert sorted(r.key for r in e.watch.rules) == [f"{A}:kyiv", "troops"]
        assert f"{B}:kyiv" in e.kept_rules


@pytest.mark.timeout(120)
async def test_a_thousand_servers_gone_at_connect_are_taken_out_and_back_at_once(
        engine: Engine) -> None:
    """A bot removed from every server while it was down (or started with another bot's
    token) meets them all at the check at connect: all are taken out, and later back, with the
    rules and sources taken again once, not once per server."""
    servers = list(range(1, 1001))
    for g in servers:
        await engine.store.put_rule(RuleConfig(name="watch", query="troops", channel="alerts",
                                               guild_id=g, origin="store"))
    await engine.reload_rules()
    assert len(engine.watch.rules) == 1 + len(servers)
    reloads = 0
    real = engine._reload_rules  # the body every change that reloads the rules runs

    async def counted() -> None:
        nonlocal reloads
        reloads += 1
        await real()

    engine._reload_rules = counted  # type: ignore[method-assign]
    gone, back = await engine.present_in(lambda: [])
    assert gone == servers and back == [] and reloads == 1
    assert [r.key for r in engine.watch.rules] == ["troops"]
    assert set(await engine.store.departed_servers()) == set(servers)
    gone, back = await engine.present_in(lambda: servers)
    assert gone == [] and back == servers and reloads == 2
    assert len(engine.watch.rules) == 1 + len(servers)
    assert not await engine.store.departed_servers()


async def test_a_rule_is_named_in_any_case_as_its_server_sees_it(engine: Engine) -> None:
    """Rule names are told apart without case (a config or /rules add refuses "Troops" beside
    "troops"), so "/mute Troops" mutes troops; it said there was no rule named 'Troops'.
    Another server's rule stays unknown in every case."""
    await server_rule(engine, {"name": "kyiv", "query": "kyiv~"}, A)
    until = await engine.mute("Troops", timedelta(hours=1), guild=B)
    await engine.mute("KYIV", timedelta(hours=1), guild=A)
    assert {v.rule.key: v.muted_until is not None for v in await engine.rules()} == {
        f"{A}:kyiv": True, "troops": True}
    assert [v.muted_until for v in await engine.rules(B)] == [until]
    for call in (engine.mute("Kyiv", timedelta(hours=1), guild=B),
                 engine.unmute("KYIV", guild=B), engine.recent(rule="Kyiv", guild=B)):
        with pytest.raises(NewswatchError, match="no rule named"):
            await call
    assert await engine.unmute(f"{A}:KYIV")  # the CLI names a server's rule by its key
    assert await engine.unmute("TROOPS", guild=A)
    assert not any(v.muted_until for v in await engine.rules())
