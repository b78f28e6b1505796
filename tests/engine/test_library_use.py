"""The library used the wrong way, as a developer embedding ``watchers`` might: a sink that
returns something odd, a sink written without ``async``, ``run_once`` on a started engine.
Each fails with an error naming the mistake, or carries on; nothing is lost or sent twice.
Real parts: the seeds folder, a SQLite file, the engine's own services."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import shutil
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SEEDS
from watchers.config import Config, parse_config
from watchers.delivery import Alert
from watchers.engine import open_engine
from watchers.errors import ConfigError, NewswatchError, StoreError
from watchers.rules import Rule, RuleSet

pytestmark = pytest.mark.timeout(120)


def config(tmp_path: Path) -> Config:
    if not (tmp_path / "seeds").exists():
        shutil.copytree(SEEDS, tmp_path / "seeds")
    return parse_config({
        "storage": {"path": "nw.db"},
        "sources": [{"name": "seeds", "type": "folder", "path": "seeds", "settle": 0}],
        "rules": [{"name": "any", "query": "russia OR ukraine OR kyiv~"}],
    }, base_dir=tmp_path)


class Odd:
    """A sink that posts and returns what its client gave back (an object, a dict, an int)."""

    def __init__(self, returns: Any) -> None:
        self.returns = returns
        self.got: list[Alert] = []

    async def deliver(self, alert: Alert) -> Any:
        self.got.append(alert)
        return self.returns


@pytest.mark.parametrize("returns", [object(), {"id": 1}, 1234567890123, True])
async def test_a_sink_returning_no_message_id_is_sent_once_and_the_engine_runs_on(
        tmp_path: Path, returns: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A sink returning an object stopped every delivery with a database error ("Error
    binding parameter"), blamed on the store, and the alert it had sent was sent again at
    the next start."""
    sink = Odd(returns)
    caplog.set_level(logging.ERROR, logger="watchers")
    async with open_engine(config(tmp_path), default_sink=sink, start=False) as engine:
        await engine.run_once()
        assert (await engine.delivery_status()).counts == {"delivered": 5}
    assert len(sink.got) == 5
    assert len({a.article.id for a in sink.got}) == 5
    assert not any("binding" in r.getMessage() for r in caplog.records)
    if isinstance(returns, int) and not isinstance(returns, bool):
        assert not caplog.records  # a message id as an int is kept as its digits
    else:
        assert f"Odd.deliver returned {type(returns).__name__}" in caplog.text
    again = Odd(None)
    async with open_engine(config(tmp_path), default_sink=again, start=False) as engine:
        await engine.run_once()
    assert again.got == []  # nothing sent twice


class Plain:
    def deliver(self, alert: Alert) -> None:
        print(alert)


class NoDeliver:
    async def send(self, alert: Alert) -> None:
        pass


@pytest.mark.parametrize(("sinks", "error"), [
    ({"default_sink": Plain()}, r"default_sink: Plain\.deliver is not a coroutine function"),
    ({"default_sink": NoDeliver()}, "default_sink: NoDeliver has no deliver method"),
    ({"sinks": {"alerts": Plain()}}, r"the sink of route 'alerts': Plain\.deliver"),
    ({"sinks": [Odd(None)]}, "sinks: a mapping of route name to sink, not list"),
])
async def test_a_sink_that_cannot_be_awaited_is_refused_at_start(
        tmp_path: Path, sinks: dict[str, Any], error: str) -> None:
    """A plain ``def deliver`` was accepted: it ran (posting), failed to be awaited, and was
    retried for ever, posting at every retry and blocking the route."""
    with pytest.raises(TypeError, match=error):
        async with open_engine(config(tmp_path), start=False, **sinks):
            pass
    assert not (tmp_path / "nw.db").exists()  # refused before the store was opened


class Digesting(Odd):
    async def digest(self, digest: Any) -> str | None:
        return None


@pytest.mark.parametrize(("route", "says"), [
    ({"quiet_hours": "22:00-07:00"}, "quiet_hours keep alerts for a digest"),
    ({"max_per_hour": 5}, "max_per_hour keep alerts for a digest"),
    ({"mode": "digest", "digest_every": "6h"}, 'mode = "digest" keep alerts for a digest'),
])
async def test_a_route_that_keeps_alerts_for_a_digest_needs_a_sink_that_posts_one(
        tmp_path: Path, route: dict[str, Any], says: str) -> None:
    """A sink with only ``deliver`` (the Printer of docs/library.md) on a route with quiet
    hours, a cap or digests: what the route kept went into a digest the sink could not post,
    was marked delivered, and was never shown."""
    config(tmp_path)  # the seeds
    data: dict[str, Any] = {
        "storage": {"path": "nw.db"},
        "sources": [{"name": "seeds", "type": "folder", "path": "seeds", "settle": 0}],
        "rules": [{"name": "any", "query": "russia OR ukraine", "channel": "alerts"}],
        "channels": {"alerts": {"target": 123, **route}}}
    cfg = parse_config(data, base_dir=tmp_path)
    with pytest.raises(ConfigError, match=rf"channels\.alerts: {re.escape(says)}, but this "
                       r"route's sink \(Odd\) cannot post one"):
        async with open_engine(cfg, default_sink=Odd(None), start=False):
            pass
    assert not (tmp_path / "nw.db").exists()  # refused before the store was opened
    async with open_engine(cfg, default_sink=Digesting(None), start=False) as engine:
        await engine.run_once()  # one that can post digests is taken
    plain = parse_config({**data, "channels": {"alerts": 123}}, base_dir=tmp_path)
    async with open_engine(plain, default_sink=Odd(None), start=False) as engine:
        await engine.run_once()  # and a route that keeps nothing needs no digests


async def test_run_once_on_a_started_engine_returns_once_its_alerts_are_delivered(
        tmp_path: Path) -> None:
    """The README's example: ``run_once`` in a started engine returned while the running
    delivery service was still sending what it had claimed (0 or 1 of 5 alerts delivered)."""
    for attempt in range(3):
        sink = Odd(None)
        target = tmp_path / str(attempt)
        target.mkdir()
        async with open_engine(config(target), default_sink=sink) as engine:
            await engine.run_once()
            assert len(sink.got) == 5, attempt
            assert (await engine.delivery_status()).counts == {"delivered": 5}


class SlowSink:
    def __init__(self) -> None:
        self.got: list[Alert] = []
        self.sent = asyncio.Event()

    async def deliver(self, alert: Alert) -> None:
        await asyncio.sleep(0.05)
        self.got.append(alert)
        self.sent.set()


async def test_run_once_while_the_service_sends_marks_nothing_maybe_sent(
        tmp_path: Path) -> None:
    """``run_once`` put back the rows the running service was sending, as if a crash had left
    them: every alert was sent once, yet the status called them "maybe sent" (and a webhook
    sink would have looked for each before posting)."""
    sink = SlowSink()
    async with open_engine(config(tmp_path), default_sink=sink) as engine:
        await asyncio.wait_for(sink.sent.wait(), 20)
        await engine.run_once()
        status = await engine.delivery_status()
        assert status.counts == {"delivered": 5} and status.maybe_sent == 0
    assert not any(a.maybe_sent for a in sink.got) and len(sink.got) == 5


class CallsBack:
    """A sink that calls the engine back from inside its send."""

    def __init__(self, call: str) -> None:
        self.call = call
        self.engine: Any = None
        self.got: list[Alert] = []
        self.errors: list[str] = []

    async def deliver(self, alert: Alert) -> None:
        self.got.append(alert)
        try:
            await getattr(self.engine, self.call)()
        except NewswatchError as exc:
            self.errors.append(str(exc))


@pytest.mark.parametrize("start", [False, True], ids=["run_once", "started"])
@pytest.mark.parametrize("call", ["run_once", "stop"])
async def test_a_sink_that_calls_back_what_waits_for_its_send_is_refused(
        tmp_path: Path, call: str, start: bool) -> None:
    """run_once from inside a sink waited for the send that called it (the running service's
    worker, or the route's lock) until the send timed out, five minutes, and the alert was sent
    again; stop() waited out its grace and cancelled the send that called it."""
    sink = CallsBack(call)
    async with open_engine(config(tmp_path), default_sink=sink, start=start) as engine:
        sink.engine = engine
        await asyncio.wait_for(engine.run_once(), 60)
        status = await engine.delivery_status()
        assert status.counts == {"delivered": 5} and status.maybe_sent == 0
    assert len(sink.got) == 5 and len({a.id for a in sink.got}) == 5
    assert sink.errors and all(f"{call} cannot be called from inside a sink's send" in e
                               for e in sink.errors)


async def test_every_stop_returns_once_stopped_and_a_stopped_engine_does_not_start(
        tmp_path: Path) -> None:
    """A second stop() at the same time (a signal handler and the front end's shutdown)
    returned at once, while the first let the send in flight finish: its caller closed the
    sinks under it. start() after stop() brought delivery back but never polling."""
    sink = SlowSink()
    async with open_engine(config(tmp_path), default_sink=sink) as engine:
        await asyncio.wait_for(sink.sent.wait(), 20)
        sink.sent.clear()
        order: list[str] = []

        async def stopping(name: str) -> None:
            await engine.stop()
            order.append(f"{name} returned")

        async def in_flight() -> None:
            await sink.sent.wait()
            order.append("send ended")

        watcher = asyncio.ensure_future(in_flight())
        await asyncio.wait_for(asyncio.gather(stopping("first"), stopping("second")), 30)
        watcher.cancel()
        # the send in flight, if any, ended before either stop returned
        assert order[-2:] == ["first returned", "second returned"], order
        with pytest.raises(NewswatchError, match="this engine was stopped; open another"):
            await engine.start()
        # nor polled: what it found was stored, claimed and reported as alerts, and waited
        # unsent until another engine opened the store
        with pytest.raises(NewswatchError, match="this engine was stopped; open another"):
            await engine.run_once()


async def test_an_on_report_callback_that_raises_is_not_the_source_s_failure(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The callback's error was counted as the source's: ten in a row paused a healthy
    source and posted "source paused"."""
    def broken(report: Any) -> None:
        raise RuntimeError("bug in my callback")

    sink = Odd(None)
    async with open_engine(config(tmp_path), default_sink=sink, start=False,
                           on_report=broken) as engine:
        (report,) = await engine.run_once()
        assert report.error is None and report.new == 5
        (health,) = [s for s in await engine.sources() if s.name == "seeds"]
        assert health.state.failures == 0
    assert len(sink.got) == 5
    assert "the on_report callback failed" in caplog.text


async def test_a_rule_muted_after_it_matched_posts_nothing(tmp_path: Path) -> None:
    """Alerts matched before /mute answered (a poll under way, a backlog behind a slow or
    paused channel) were still posted after it: 25 of them in one probe."""
    sink = Odd(None)
    async with open_engine(config(tmp_path), default_sink=sink, start=False) as engine:
        await engine.watch.run_once()  # matched and queued, not yet sent
        await engine.mute("any", timedelta(hours=1))
        await engine.delivery.drain()
        status = await engine.delivery_status()
        assert status.counts == {"rejected": 5}
        assert {r.reason for r in status.rejected} == {"its rule was muted before it was sent"}
        await engine.unmute("any")
    assert sink.got == []


async def test_a_removed_rule_takes_its_mute_with_it(tmp_path: Path) -> None:
    """A mute was kept by the rule's key after the rule was removed: the next rule given the
    same name was muted from its first match, and `/rules add` said only "saved"."""
    sink = Odd(None)
    async with open_engine(config(tmp_path), default_sink=sink, start=False) as engine:
        await engine.add_rule({"name": "watch", "query": "troops"})
        await engine.mute("watch", timedelta(days=30))
        assert await engine.remove_rule("watch")
        await engine.add_rule({"name": "watch", "query": "russia OR ukraine"})
        assert "watch" not in await engine.store.mutes(now=datetime.now(UTC))
        await engine.run_once()
        status = await engine.delivery_status()
        assert "rejected" not in status.counts
    assert any("watch" in {r.name for r in a.rules} for a in sink.got), sink.got


async def test_closing_while_a_job_runs_in_the_engine_s_threads_keeps_the_loop_going(
        tmp_path: Path) -> None:
    """The engine's thread pool was shut down on the event loop, which a job still running
    (a long match) then held for its whole length: heartbeats and the caller's tasks stopped."""
    ticks: list[float] = []

    async def ticking() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    async with open_engine(config(tmp_path), start=False) as engine:
        job = asyncio.get_running_loop().run_in_executor(engine.executor, time.sleep, 2.0)
        ticker = asyncio.ensure_future(ticking())
        await asyncio.sleep(0.05)
        closing_from = time.monotonic()
    ticker.cancel()
    await job
    during = [t for t in ticks if t > closing_from]
    assert len(during) >= 5, f"{len(during)} ticks while the engine closed"


async def test_run_time_rules_and_sources_name_their_own_keys(tmp_path: Path) -> None:
    """A wrong key in ``add_rule``/``add_source`` was answered with the config file's top-level
    sections as the keys expected; ``guild_id`` (a server's rule) was silently dropped and
    the rule made global; a folder source was answered with a feed's missing url."""
    async with open_engine(config(tmp_path), start=False) as engine:
        with pytest.raises(ConfigError) as bad:
            await engine.add_rule({"name": "x", "query": "troops", "colour": "red"})
        assert ("rule: colour: unknown key (expected one of: channel, enabled, mention_role, "
                "mention_roles, mention_users, min_sources, name, query, severity, surge, "
                "template, template_style, threshold)") in str(bad.value)
        with pytest.raises(ConfigError, match=r"chanel: unknown key \(did you mean 'channel'\?\)"):
            await engine.add_rule({"name": "x", "query": "troops", "chanel": "alerts"})
        with pytest.raises(ConfigError, match="guild_id: set by newswatch itself"):
            await engine.add_rule({"name": "x", "query": "troops", "guild_id": 5})
        with pytest.raises(ConfigError) as bad:
            await engine.add_source({"name": "w", "url": "https://example.org/f", "colour": 1})
        assert "colour: unknown key (expected one of: backfill, enabled, every" in str(bad.value)
        assert "storage" not in str(bad.value)
        with pytest.raises(ConfigError, match="type: 'folder': only feeds are added at run time"):
            await engine.add_source({"type": "folder", "path": str(tmp_path)})
        with pytest.raises(ConfigError, match="origin: set by newswatch itself"):
            await engine.add_source({"name": "w", "url": "https://example.org/f",
                                     "origin": "config"})
        assert [v.rule.name for v in await engine.rules()] == ["any"]
        assert engine.source_names() == ["seeds"]


async def test_lookup_and_mute_arguments_of_the_wrong_kind_are_named(tmp_path: Path) -> None:
    """``since=timedelta(0)`` searched everything (0 read as "no limit"); a negative limit
    returned one hit, or every article from ``recent``; ``limit="5"`` and a huge ``since``
    failed deep inside (TypeError, OverflowError); a negative or zero mute muted nothing and
    said nothing; ``mute(rule, 3600)`` failed adding an int to a datetime."""
    async with open_engine(config(tmp_path), start=False) as engine:
        await engine.run_once()
        assert len((await engine.search("russia", limit=50)).hits) == 5
        for since in (timedelta(0), timedelta(hours=-1), timedelta(days=10**6)):
            with pytest.raises(ValueError, match="since: more than 0 and at most 100 years"):
                await engine.search("russia", since=since)
        with pytest.raises(TypeError, match=r"since: a datetime\.timedelta, not int"):
            await engine.search("russia", since=3600)  # type: ignore[arg-type]
        for limit in (0, -1, -5):
            with pytest.raises(ValueError, match=f"limit: at least 1, not {limit}"):
                await engine.search("russia", limit=limit)
            with pytest.raises(ValueError, match=f"limit: at least 1, not {limit}"):
                await engine.recent(limit=limit)
        odd: list[Any] = ["5", None, 2.5, True]
        for wrong in odd:
            with pytest.raises(TypeError, match="limit: a whole number"):
                await engine.search("russia", limit=wrong)
        with pytest.raises(ValueError, match="order: 'newest' or 'best', not 'oldest'"):
            await engine.search("russia", order="oldest")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="samples: at least 0, not -1"):
            await engine.test_rule("russia", samples=-1)
        with pytest.raises(ValueError, match="window: more than 0"):
            await engine.test_rule("russia", window=timedelta(0))
        with pytest.raises(TypeError, match="article_id: a str, not NoneType"):
            await engine.article(None)  # type: ignore[arg-type]
        for duration in (timedelta(0), timedelta(hours=-1), timedelta.max):
            with pytest.raises(ValueError, match="duration: more than 0 and at most 100 years"):
                await engine.mute("any", duration)
        not_spans: list[Any] = [3600, 1.5, "1h", None]
        for wrong in not_spans:
            with pytest.raises(TypeError, match=r"duration: a datetime\.timedelta"):
                await engine.mute("any", wrong)
        assert not await engine.unmute("any")  # none of them muted it
        assert len(await engine.recent(limit=50)) == 5


async def test_an_engine_used_after_its_block_says_it_is_closed(tmp_path: Path) -> None:
    """After ``open_engine``'s block, every method failed with aiosqlite's "no active
    connection", ``start()`` started the services again on the closed store, and ``failed()``
    never returned."""
    async with open_engine(config(tmp_path), start=False) as engine:
        await engine.run_once()
    with pytest.raises(StoreError, match=r"the store .*nw\.db is closed \(used after its engine"):
        await engine.search("russia")
    with pytest.raises(StoreError, match="is closed"):
        await engine.recent()
    with pytest.raises(StoreError, match="is closed"):
        await engine.add_rule({"name": "x", "query": "troops"})
    with pytest.raises(NewswatchError, match="this engine is closed"):
        await engine.start()
    with pytest.raises(NewswatchError, match="this engine is closed"):
        await engine.run_once()
    with pytest.raises(NewswatchError, match="this engine is closed"):
        await asyncio.wait_for(engine.failed(), 10)
    async with open_engine(config(tmp_path), start=False) as again:  # nothing was lost
        assert len(await again.recent(limit=50)) == 5


def odd(value: object) -> Any:
    """``value`` as a caller without a type checker passes it."""
    return value


@pytest.mark.parametrize(("make", "error"), [
    (lambda: RuleSet.from_queries(odd({1: "troops"})), "a rule's name is a str, not int"),
    (lambda: RuleSet.from_queries(odd({"a": None})), "rule 'a': its query is a str, not None"),
    (lambda: RuleSet.from_queries(odd({"a": b"troops"})), "its query is a str, not bytes"),
    (lambda: RuleSet.from_queries(odd(["x"])), "from_queries takes a mapping"),
    (lambda: RuleSet(odd({"a": "troops"})), "RuleSet takes Rule objects; for"),
    (lambda: RuleSet(odd(["troops"])), "RuleSet takes Rule objects, not str"),
    (lambda: RuleSet.from_queries({"a": "x"}, threshold=odd("85")), "threshold is a number"),
    (lambda: Rule("a", "x", fields=odd("title")), r"not a str \(write \('title',\)\)"),
    (lambda: RuleSet.from_queries({"a": "k~"}, aliases=odd({"k": [1]})), "aliases: 'k'"),
    (lambda: RuleSet.from_queries({"a": "x"}).match(odd(None)), "match takes an Article"),
    (lambda: RuleSet.from_queries({"a": "x"}).decide(odd("x")), "decide takes an Article, not str"),
])
def test_a_rule_set_built_from_the_wrong_things_says_what_they_should_be(
        make: Any, error: str) -> None:
    """A non-str name built and failed at the first match (a pydantic error about Match); a
    non-str query failed deep in the parser ("object of type 'NoneType' has no len()");
    ``fields="title"`` was read as five one-letter fields."""
    with pytest.raises(TypeError, match=error):
        make()


async def test_a_store_path_that_is_no_path_is_refused(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """``store_path=5`` made the files ./5 and ./5.lock in the current directory."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TypeError, match="store_path: a path"):
        async with open_engine(config(tmp_path), start=False, store_path=odd(5)):
            pass
    assert sorted(os.listdir(tmp_path)) == ["seeds"]
    async with open_engine(config(tmp_path), start=False,
                           store_path=tmp_path / "other.db") as engine:  # a Path is a path
        await engine.run_once()
    assert (tmp_path / "other.db").is_file()


def test_an_article_fetched_before_the_earliest_utc_time_is_a_validation_error() -> None:
    """0001-01-01T00:00+01:00 raised a bare OverflowError from inside the model (the same
    value as ``published`` was already taken as no date)."""
    from datetime import datetime, timezone

    from pydantic import ValidationError

    from watchers.models import Article

    early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    with pytest.raises(ValidationError, match=r"fetched_at\n.*before the earliest time"):
        Article(title="t", fetched_at=early)
    assert Article(title="t", published=early).published is None


async def until_got(engine: Any, sink: Any, n: int) -> None:
    """Poll once, then drain delivery until ``sink`` has got ``n`` alerts (5 s at most): its
    retries come after short backoffs."""
    await asyncio.wait_for(engine.run_once(), 30)
    for _ in range(100):
        if len(sink.got) == n:
            break
        await asyncio.sleep(0.05)
        await engine.delivery.drain()


class Hangs:
    """A sink whose first call never answers (a client waiting on a dead socket)."""

    def __init__(self) -> None:
        self.got: list[Alert] = []
        self.calls = 0

    async def deliver(self, alert: Alert) -> None:
        self.calls += 1
        if self.calls == 1:
            await asyncio.Event().wait()
        self.got.append(alert)


async def test_a_sink_that_never_answers_is_given_up_on_and_the_alert_retried(
        tmp_path: Path) -> None:
    """There was no limit on a sink's call: one that never answered held its route, and every
    alert behind it, for ever. It counts as lost after ``send_timeout`` seconds; the alert is
    retried, marked as maybe sent (for the sink to look first), and the others follow."""
    sink = Hangs()
    async with open_engine(config(tmp_path), default_sink=sink, start=False) as engine:
        engine.delivery.send_timeout = 0.5
        engine.delivery.base_backoff = engine.delivery.max_backoff = 0.1
        await until_got(engine, sink, 5)
        assert len(sink.got) == 5
        assert [a.maybe_sent for a in sink.got].count(True) == 1
        assert (await engine.delivery_status()).counts == {"delivered": 5}


class IgnoresCancel:
    """A sink that catches the cancellation of its call and goes on waiting."""

    def __init__(self) -> None:
        self.released = False
        self.started = asyncio.Event()

    async def deliver(self, alert: Alert) -> None:
        self.started.set()
        while not self.released:
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                continue


async def test_leaving_the_engine_does_not_wait_for_ever_on_a_sink_that_ignores_cancel(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Leaving ``open_engine`` awaited every cancelled delivery task: a sink that swallowed
    the cancellation held the exit for ever, past the grace period."""
    import watchers.delivery

    monkeypatch.setattr(watchers.delivery, "CLOSE_WAIT", 0.5)
    caplog.set_level(logging.ERROR, logger="watchers")
    sink = IgnoresCancel()

    async def use() -> None:
        async with open_engine(config(tmp_path), default_sink=sink) as engine:
            engine.delivery.send_timeout = 3600
            await engine.watch.run_once()
            engine.delivery.wake_event.set()
            await asyncio.wait_for(sink.started.wait(), 20)

    caplog.set_level(logging.ERROR, logger="asyncio")
    caplog.set_level(logging.WARNING, logger="watchers")
    try:
        await asyncio.wait_for(use(), 30)  # the grace period (5 s) and CLOSE_WAIT, not for ever
    finally:
        sink.released = True
    assert "did not stop when cancelled (its sink ignores cancellation)" in caplog.text
    # Released, the task left running goes on to a store closed under it. How it ended is one
    # line of the engine's, not asyncio's "exception was never retrieved" with a traceback.
    left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    await asyncio.wait_for(asyncio.gather(*left, return_exceptions=True), 20)
    await asyncio.sleep(0)  # its done callbacks
    gc.collect()
    assert re.search(r"delivery task \S+, left running at close, ended with \w+", caplog.text)
    assert "never retrieved" not in caplog.text


async def test_the_wrong_kind_of_argument_is_named_not_an_internal_traceback(
        tmp_path: Path) -> None:
    from watchers.models import Article
    from watchers.rules import match_query
    from watchers.stories import StoryInput, cluster

    for data in ([1], None, "storage = 1"):
        with pytest.raises(ConfigError, match=r"must be a table of settings \(a mapping\), "
                                              f"not {type(data).__name__}"):
            parse_config(data)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"config: a Config .* not str"):
        async with open_engine("config.toml", start=False):  # type: ignore[arg-type]
            pass
    rules = RuleSet.from_queries({"troops": "troops"})
    with pytest.raises(TypeError, match="not the str 'troops'"):
        rules.evidence(Article(title="Troops", text=""), "troops")
    for threshold in (0, 49, 101, 200):
        with pytest.raises(ValueError, match=r"threshold must be .*50 to 100"):
            RuleSet.from_queries({"t": "troops~"}, threshold=threshold)
        with pytest.raises(ValueError, match=r"threshold must be .*50 to 100"):
            match_query("troops~", Article(title="Troops", text=""), threshold=threshold)

    when = datetime(2022, 1, 20, tzinfo=UTC)
    one = StoryInput("a", "Troops gather", "", None, when, "dw")
    with pytest.raises(ValueError, match="the id 'a' is given twice"):
        cluster([one, one])
    with pytest.raises(ValueError, match="'date' must be a timezone-aware datetime"):
        cluster([StoryInput("b", "Troops", "", None, datetime(2022, 1, 20), "dw")])
    with pytest.raises(ValueError, match="'date' must be a timezone-aware datetime"):
        cluster([StoryInput("c", "Troops", "", None, "2022-01-20", "dw")])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="item 0: a StoryInput, not dict"):
        cluster([{"id": "d"}])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="window: a positive timedelta, not 48"):
        cluster([one], window=48)  # type: ignore[arg-type]
    assert [s.ids for s in cluster([one])] == [["a"]]


async def test_a_rule_refused_when_added_is_not_also_logged_as_skipped(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with open_engine(config(tmp_path), start=False) as engine:
        with caplog.at_level(logging.INFO), pytest.raises(ConfigError, match="query"):
            await engine.add_rule({"name": "x", "query": "troops AND"})
        # the error is the caller's to show; "skipped" read as though the rule had been taken
        assert not [r for r in caplog.records if "skipped" in r.getMessage()]
        assert "x" not in {r.name for r in engine.watch.rules}


async def test_a_setting_its_route_ignores_is_named_when_the_engine_opens(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "seeds").mkdir()
    cfg = parse_config({
        "storage": {"path": "nw.db"},
        "channels": {"briefing": {"target": 5, "mode": "digest", "digest_every": "1h",
                                  "max_per_hour": 20}},
        "rules": [{"name": "troops", "query": "troops", "channel": "briefing"}],
    }, base_dir=tmp_path)
    with caplog.at_level(logging.WARNING):
        async with open_engine(cfg, start=False):
            pass
    assert any("channels.briefing: max_per_hour does nothing on a digest route" in r.getMessage()
               for r in caplog.records)


class Misbehaves:
    """A sink whose first call ends in ``first`` (raised, or awaited: a cancelled future)."""

    def __init__(self, first: str) -> None:
        self.first = first
        self.got: list[Alert] = []
        self.calls = 0

    async def deliver(self, alert: Alert) -> str:
        self.calls += 1
        if self.calls == 1:
            if self.first == "cancelled":
                done = asyncio.get_running_loop().create_future()
                done.cancel()
                await done
            if self.first == "timeout":
                raise TimeoutError("connect timeout to my webhook")
            if self.first == "exit":
                raise SystemExit("the sink quits")
            if self.first == "interrupt":
                raise KeyboardInterrupt
            if self.first == "abort":
                raise Abort("the framework stops")
        self.got.append(alert)
        return f"m{len(self.got)}"


@pytest.mark.parametrize("first", ["cancelled", "timeout"])
async def test_a_sinks_own_cancel_or_timeout_is_its_error_retried_in_place(
        tmp_path: Path, first: str, caplog: pytest.LogCaptureFixture) -> None:
    """A sink's own CancelledError (a future it awaited was cancelled) was taken for a stop of
    delivery: the alert was left "sending" until a restart and the route's later alerts went
    out before it. A sink's own TimeoutError (its HTTP client's) was logged as "did not answer
    in 300 s". Both are the sink's errors now: the alert is retried first, maybe sent."""
    caplog.set_level(logging.WARNING, logger="watchers")
    sink = Misbehaves(first)
    async with open_engine(config(tmp_path), default_sink=sink, start=False) as engine:
        engine.delivery.base_backoff = engine.delivery.max_backoff = 0.1
        await until_got(engine, sink, 5)
        assert (await engine.delivery_status()).counts == {"delivered": 5}
    assert len(sink.got) == 5
    # the first alert, retried, went out first (and marked maybe sent), the others after it
    assert sink.got[0].maybe_sent and not any(a.maybe_sent for a in sink.got[1:])
    assert [a.id for a in sink.got] == sorted(a.id for a in sink.got)
    said = {"cancelled": "Misbehaves raised CancelledError of its own",
            "timeout": "Misbehaves raised TimeoutError: connect timeout to my webhook"}[first]
    assert said in caplog.text and "did not answer" not in caplog.text


async def test_a_sink_that_exits_fails_the_engine_which_closes_in_order(
        tmp_path: Path) -> None:
    """A sink calling sys.exit() from inside delivery ended the event loop with the engine
    open: its store's thread then kept the process from ever exiting. The engine fails
    instead, naming the sink, and closes in order; the alert is delivered at the next start."""
    sink = Misbehaves("exit")
    async with open_engine(config(tmp_path), default_sink=sink, start=False) as engine:
        await engine.watch.run_once()
        engine.delivery.wake_event.set()
        await engine.start()
        with pytest.raises(NewswatchError, match="Misbehaves raised SystemExit: the sink "
                                                  "quits while sending alert 1"):
            await asyncio.wait_for(engine.failed(), 30)
    again = Misbehaves("")
    async with open_engine(config(tmp_path), default_sink=again, start=False) as engine:
        await asyncio.wait_for(engine.run_once(), 30)
        assert (await engine.delivery_status()).counts == {"delivered": 5}
    assert len(again.got) == 5 and again.got[0].maybe_sent


class Abort(BaseException):
    """A framework's own BaseException (neither KeyboardInterrupt nor SystemExit): it left the
    alert "sending" for the life of the process, the route's later alerts going out before
    it, and run_once returned as if all had gone well."""


@pytest.mark.parametrize(("first", "said"), [("exit", "SystemExit: the sink quits"),
                                             ("interrupt", "KeyboardInterrupt"),
                                             ("abort", "Abort: the framework stops")])
async def test_run_once_with_a_sink_that_exits_raises_naming_it_and_does_not_hang(
        tmp_path: Path, first: str, said: str) -> None:
    """run_once (the library's example) waited for ever: the route's pass awaited a future
    set only when the engine closed, and run_once's drain awaited the pass. It raises the
    engine's error, naming the sink; the alert is delivered at the next start, the others
    untouched meanwhile."""
    sink = Misbehaves(first)
    async with open_engine(config(tmp_path), default_sink=sink, start=False) as engine:
        with pytest.raises(NewswatchError, match=f"Misbehaves raised {said} while sending "
                                                 "alert 1; delivery stopped"):
            await asyncio.wait_for(engine.run_once(), 30)
        assert sink.calls == 1  # nothing more is sent
        with pytest.raises(NewswatchError, match="delivery stopped"):
            await asyncio.wait_for(engine.run_once(), 30)
        assert sink.calls == 1
    again = Misbehaves("")
    async with open_engine(config(tmp_path), default_sink=again, start=False) as engine:
        await asyncio.wait_for(engine.run_once(), 30)
        assert (await engine.delivery_status()).counts == {"delivered": 5}
    assert len(again.got) == 5 and again.got[0].maybe_sent
    assert not any(a.maybe_sent for a in again.got[1:])


async def test_a_started_engines_sink_that_exits_halts_delivery_and_run_once_says_so(
        tmp_path: Path) -> None:
    """As the docs' example runs it (the engine started): the halt came in the running
    service's own pass, run_once's drain went on to send the four other alerts and returned
    as if all was well, and the halted alert went out after them at the next start."""
    sink = Misbehaves("exit")
    async with open_engine(config(tmp_path), default_sink=sink) as engine:
        with pytest.raises(NewswatchError, match="Misbehaves raised SystemExit: the sink "
                                                 "quits while sending alert 1"):
            await asyncio.wait_for(engine.run_once(), 30)
        await asyncio.sleep(0.3)  # the running service sends nothing more either
        assert sink.calls == 1
        with pytest.raises(NewswatchError, match="delivery stopped"):
            await asyncio.wait_for(engine.failed(), 30)
    again = Misbehaves("")
    async with open_engine(config(tmp_path), default_sink=again, start=False) as engine:
        await asyncio.wait_for(engine.run_once(), 30)
        assert (await engine.delivery_status()).counts == {"delivered": 5}
    assert len(again.got) == 5 and again.got[0].maybe_sent  # the halted one first, in order
    assert [a.id for a in again.got] == sorted(a.id for a in again.got)


async def test_a_halt_on_one_route_lets_the_others_sends_finish_before_the_engine_closes(
        tmp_path: Path) -> None:
    """run_once sends routes side by side: a sink halting delivery on one route ended
    run_once at once, the engine closed, and another route's send under way went on
    unattended: its message was made after the store had closed, not recorded, and posted
    again at the next start. That send is now waited for and recorded; nothing more goes."""
    for i in range(4):
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / f"a{i}.txt").write_text(
            f"Troops cross river {i}\n\nTroops were seen near town {i}.")
    cfg = parse_config({"storage": {"path": "nw.db"}, "channels": {"a": 1, "b": 2},
                        "sources": [{"name": "in", "type": "folder", "path": "in",
                                     "settle": 0}],
                        "rules": [{"name": "ra", "query": "troops", "channel": "a"},
                                  {"name": "rb", "query": "troops", "channel": "b"}]},
                       base_dir=tmp_path)

    class Exits:
        async def deliver(self, alert: Alert) -> str | None:
            await asyncio.sleep(0.05)
            raise SystemExit("quit")

    class Slow:
        def __init__(self) -> None:
            self.got: list[tuple[int, bool]] = []

        async def deliver(self, alert: Alert) -> str | None:
            await asyncio.sleep(0.4)
            self.got.append((alert.id, alert.maybe_sent))
            return f"m{alert.id}"

    slow = Slow()
    async with open_engine(cfg, sinks={"a": Exits(), "b": slow}, start=False) as engine:
        with pytest.raises(NewswatchError, match="delivery stopped"):
            await asyncio.wait_for(engine.run_once(), 30)
        sent = list(slow.got)
        assert len(sent) == 1  # the send under way finished; none after it
    await asyncio.sleep(0.6)
    assert slow.got == sent  # nothing was sent once the engine had closed
    again = Slow()
    async with open_engine(cfg, sinks={"a": Slow(), "b": again}, start=False) as engine:
        await asyncio.wait_for(engine.run_once(), 30)
    b_ids = [i for i, _ in again.got]
    assert sent[0][0] not in b_ids and len(b_ids) == 3  # the rest, none twice
    assert not any(maybe for _, maybe in again.got)


async def test_a_sink_that_keeps_ids_but_cannot_update_gets_every_article_of_a_story(
        tmp_path: Path) -> None:
    """A sink returning a message id and with no ``update`` had every later article of a
    story marked delivered as an update it never saw (a line in the log said so): three
    feeds' reports of one event were one call. Each is an alert of its own to such a sink."""
    (tmp_path / "wire").mkdir()
    cfg = parse_config({
        "storage": {"path": "nw.db"},
        "sources": [{"name": "wire", "type": "folder", "path": "wire", "settle": 0}],
        "rules": [{"name": "troops", "query": "troops"}],
    }, base_dir=tmp_path)
    sink = Odd("msg-1")
    async with open_engine(cfg, default_sink=sink, start=False) as engine:
        for i in range(3):
            (tmp_path / "wire" / f"{i}.txt").write_text(
                f"Russian troops mass at Ukraine border, update {i}\n\nRussian troops massed "
                f"at the Ukraine border on Monday, officials said ({i}).\n")
            await engine.run_once()
    assert [a.article.title[-8:] for a in sink.got] == ["update 0", "update 1", "update 2"]
    stories = {a.story.id for a in sink.got if a.story is not None}
    assert len(stories) == 1  # one story, every article of it handed over


async def test_a_store_path_that_is_an_sqlite_uri_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``store_path="file:///…/nw.db"``: SQLite opened the file the URI names, while the lock
    and the folder took the name as written (./file:/…), so a second writer got past the
    one-writer lock of an engine already open on that file."""
    monkeypatch.chdir(tmp_path)
    async with open_engine(config(tmp_path), start=False) as engine:
        with pytest.raises(StoreError, match="is an SQLite URI; give the database file's path"):
            async with open_engine(config(tmp_path), start=False,
                                   store_path=f"file://{tmp_path / 'nw.db'}"):
                pass
        await engine.run_once()
    assert not (tmp_path / "file:").exists()


async def test_a_clock_giving_naive_times_is_refused(tmp_path: Path) -> None:
    """Taken, every poll failed with "can't compare offset-naive and offset-aware datetimes"
    and the sources counted failures until they paused."""

    class Naive:
        def now(self) -> datetime:
            return datetime(2022, 1, 24, 12, 0)

    with pytest.raises(TypeError, match="clock: an object whose now\\(\\) gives a "
                                        "timezone-aware datetime"):
        async with open_engine(config(tmp_path), start=False, clock=Naive()):
            pass
    assert not (tmp_path / "nw.db").exists()  # refused before anything was opened


async def test_a_failure_nobody_awaits_is_logged_and_one_awaited_is_left_to_its_waiter(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The engine logs a failure that ends it unless someone awaits ``failed()`` (who says it:
    the CLI said it twice, logged and as its last line)."""
    from watchers.errors import StoreError

    cfg = parse_config({"storage": {"path": "nw.db"},
                        "rules": [{"name": "t", "query": "troops"}]}, base_dir=tmp_path)
    caplog.set_level(logging.ERROR)
    async with open_engine(cfg, start=False) as alone:
        alone.fail(StoreError("the store went away"))
    assert [r.getMessage() for r in caplog.records] == ["the store went away"]
    caplog.clear()
    async with open_engine(cfg, start=False) as watched:
        waiter = asyncio.ensure_future(watched.failed())
        await asyncio.sleep(0)
        watched.fail(StoreError("the store went away again"))
        with pytest.raises(StoreError, match="went away again"):
            await waiter
    assert caplog.records == []


async def test_alerts_of_a_route_with_no_destination_here_are_said_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A route with alerts due and no sink in this process (a deliver worker whose config lacks
    it, a library user's partial sinks) kept them pending without a word."""
    from tests.fakes.sinks import RecordingSink

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("Troops cross the river\n\nTroops were seen.")
    cfg = parse_config({"storage": {"path": "nw.db"}, "channels": {"alerts": 1, "other": 2},
                        "sources": [{"name": "in", "type": "folder", "path": "in",
                                     "settle": 0, "every": "0.1s"}],
                        "rules": [{"name": "t", "query": "troops", "channel": "other"}]},
                       base_dir=tmp_path)
    caplog.set_level(logging.WARNING)
    async with open_engine(cfg, sinks={"alerts": RecordingSink()}) as engine:
        for _ in range(100):
            if "no destination in this process" in caplog.text:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # more looks at the outbox: said once
        assert (await engine.delivery_status()).counts == {"pending": 1}
    said = [r.getMessage() for r in caplog.records if "no destination" in r.getMessage()]
    assert said == ["route other has alerts due and no destination in this process; they wait "
                    "for one that has it (a deliver process whose config names it, or the route "
                    "put back)"]


async def test_the_engines_fetcher_refuses_once_the_engine_is_closed(tmp_path: Path) -> None:
    """The shared fetcher is made when a source first fetches. One never made before the
    engine closed was made by a use after it: a fetch went out on a fresh session nobody
    closed, where a closed engine's fetcher refuses ("fetcher is closed")."""
    from watchers.errors import SourceError

    async with open_engine(config(tmp_path), start=False) as engine:
        pass  # a folder source: nothing was fetched
    with pytest.raises(SourceError, match="fetcher is closed"):
        await engine.fetcher.get("https://newswatch.invalid/feed.xml")


class CancelsItself:
    """An embedder's source whose poll awaits a future that was cancelled (its own)."""

    name = "mine"

    def __init__(self) -> None:
        self.polls = 0

    async def poll(self, cursor: Any) -> Any:
        self.polls += 1
        done = asyncio.get_running_loop().create_future()
        done.cancel()
        await done

    async def aclose(self) -> None:
        pass


async def test_a_sources_own_cancelled_error_is_its_failure_not_a_stop(tmp_path: Path) -> None:
    """Passed on as a stop of the poll, it ended run_once's round for every source (the seeds
    were never stored), and a started engine never polled the source again."""
    from datetime import timedelta

    from tests.fakes.sinks import RecordingSink

    cfg = config(tmp_path)
    mine = CancelsItself()
    recorded = RecordingSink()
    async with open_engine(cfg, default_sink=recorded, start=False) as engine:
        await engine.watch.add_source(cfg.sources[0].model_copy(
            update={"name": "mine", "every": timedelta(seconds=0.2)}), mine)
        reports = {r.source: r for r in await asyncio.wait_for(engine.run_once(), 30)}
        assert reports["seeds"].error is None and reports["seeds"].new == 5
        assert "CancelledError of its own" in str(reports["mine"].error)
        assert await engine.count_articles() == 5
        await engine.start()
        for _ in range(200):  # polled again, on its schedule (its failures back off)
            if mine.polls >= 2:
                break
            await asyncio.sleep(0.05)
        assert mine.polls >= 2
        (state,) = [s for s in await engine.sources() if s.name == "mine"]
        assert state.state.failures >= 1


async def test_a_wrong_kind_of_argument_is_named_by_the_engine(tmp_path: Path) -> None:
    """None or a number where a name or a query goes reached ``.casefold()`` or ``len()`` and
    failed in Python's words, naming no argument; ``left(None)`` stored server 1 as gone."""
    from datetime import timedelta

    async with open_engine(config(tmp_path), start=False) as engine:
        calls: list[tuple[Callable[[], Awaitable[Any]], str]] = [
            (lambda: engine.search(None), "query: a str, not NoneType"),  # type: ignore[arg-type]
            (lambda: engine.search("troops", source=5), "source: a str, not int"),  # type: ignore[arg-type]
            (lambda: engine.remove_rule(None), "name: a str, not NoneType"),  # type: ignore[arg-type]
            (lambda: engine.mute(None, timedelta(hours=1)), "rule: a str"),  # type: ignore[arg-type]
            (lambda: engine.unmute(3), "rule: a str, not int"),  # type: ignore[arg-type]
            (lambda: engine.trend(None), "what: a str, not NoneType"),  # type: ignore[arg-type]
            (lambda: engine.digest_now(None), "route: a str, not NoneType"),  # type: ignore[arg-type]
            (lambda: engine.left(None), "guild: a server id (an int), not NoneType"),  # type: ignore[arg-type]
            (lambda: engine.left("5"), "guild: a server id (an int), not str"),  # type: ignore[arg-type]
        ]
        for call, said in calls:
            with pytest.raises(TypeError, match=re.escape(said)):
                await call()
        assert await engine.store.departed_servers() == {}
    with pytest.raises(NewswatchError, match="this engine is closed"):
        await engine.import_articles(tmp_path / "none.jsonl")


def test_match_query_names_what_it_takes() -> None:
    from watchers.models import Article
    from watchers.rules import match_query

    with pytest.raises(TypeError, match="match_query takes an Article, not str"):
        match_query("troops", "some text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="match_query takes a query"):
        match_query(5, Article(title="t", text="troops"))  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["title", "text", "source", "url", "guid"])
def test_an_article_refuses_bytes_for_its_text(field: str) -> None:
    """Bytes were taken as text without the model's clean-up (a NUL and a soft hyphen kept)
    and hashed as their repr ("b'abc'"): another id and hash for the same words, and a round
    trip through model_dump gave another title."""
    from pydantic import ValidationError

    from watchers.models import Article

    given: dict[str, Any] = {"title": "Troops", field: b"http://x.example/a\x00b\xc2\xad"}
    with pytest.raises(ValidationError, match=f"{field}: text \\(str\\), not bytes"):
        Article(**given)
