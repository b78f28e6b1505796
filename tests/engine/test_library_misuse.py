"""More of the library used the wrong way, as a developer embedding ``watchers`` might: a
trend asked in buckets that never end, one id where a list of ids belongs, a limit past what
a database counts, a sink whose story and digest methods cannot be awaited or answer with
the wrong thing, a source of their own that ends the process from inside its poll, a call
from another thread's event loop. Each is an
error naming the mistake, or carries on; nothing is lost, posted twice, or left hanging.
Real parts: folders of articles, a SQLite file, the engine's own services."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.engine.test_library_use import config
from watchers.config import Config, parse_config
from watchers.delivery import Alert, StoryUpdate, UpdateResult
from watchers.engine import open_engine
from watchers.errors import NewswatchError
from watchers.sources.base import Poll

pytestmark = pytest.mark.timeout(120)




def odd(value: object) -> Any:
    """``value`` as a caller without a type checker passes it."""
    return value


async def test_a_trend_in_buckets_that_never_end_is_refused_not_a_hung_loop(
        tmp_path: Path) -> None:
    """``trend(bucket=timedelta(seconds=-1))`` counted backwards for ever on the event loop
    (nothing else ran, not even a timeout, and memory grew until the process died); a bucket
    of a microsecond was as good as that; ``since=3600`` and a huge ``since`` failed deep
    inside (TypeError comparing, OverflowError), and a negative one drew an empty trend."""
    async with open_engine(config(tmp_path), start=False) as engine:
        await engine.run_once()
        for bucket in (timedelta(seconds=-1), timedelta(0)):
            with pytest.raises(ValueError, match="bucket: more than 0"):
                await asyncio.wait_for(engine.trend("russia", bucket=bucket), 10)
        with pytest.raises(ValueError, match=r"bucket: 604,800,000,001 buckets of 0:00:00\.000001"
                                             r" in 7 days, 0:00:00; at most 10,000"):
            await asyncio.wait_for(engine.trend("russia", bucket=timedelta(microseconds=1)), 10)
        with pytest.raises(TypeError, match=r"bucket: a datetime\.timedelta, not int"):
            await engine.trend("russia", bucket=odd(60))
        for since in (timedelta(days=-1), timedelta(0), timedelta(days=10**6)):
            with pytest.raises(ValueError, match="since: more than 0 and at most 100 years"):
                await asyncio.wait_for(engine.trend("russia", since=since), 10)
        with pytest.raises(TypeError, match=r"since: a datetime\.timedelta, not int"):
            await engine.trend("russia", since=odd(3600))
        # a century of days by the default bucket: 36,501 bars (half a minute to draw)
        with pytest.raises(ValueError, match=r"since: 36,501 buckets of 1 day, 0:00:00 in "
                                             r"36500 days, 0:00:00; at most 10,000"):
            await asyncio.wait_for(engine.trend("russia", since=timedelta(days=36500)), 10)
        # what the front ends ask still works: hours up to 3 days, days beyond
        hourly = await engine.trend("russia", since=timedelta(days=1))
        assert hourly.bucket == timedelta(hours=1) and 24 <= len(hourly.points) <= 25
        daily = await engine.trend("russia", since=timedelta(days=90), bucket=timedelta(days=1))
        assert daily.bucket == timedelta(days=1) and 90 <= len(daily.points) <= 91


async def test_the_stories_of_one_id_given_alone_is_a_type_error_not_an_empty_answer(
        tmp_path: Path) -> None:
    """``stories_of(article.id)`` took the id for a sequence of one-letter ids and answered
    ``{}``, as though the article had no story; None failed inside ("not iterable")."""
    async with open_engine(config(tmp_path), start=False) as engine:
        await engine.run_once()
        (article, _), *_ = await engine.recent(limit=1)
        found = await engine.stories_of([article.id])
        assert set(found) == {article.id}  # each stored article has a story
        with pytest.raises(TypeError, match=r"article_ids: a sequence of article ids, not a "
                                            rf"str \(write \[{article.id!r}\]\)"):
            await engine.stories_of(article.id)
        for wrong in (None, 5):
            with pytest.raises(TypeError, match="article_ids: a sequence of article ids, not "
                                                f"{type(wrong).__name__}"):
                await engine.stories_of(odd(wrong))
        with pytest.raises(TypeError, match="article_ids: each a str, not int"):
            await engine.stories_of(odd([article.id, 5]))
        assert await engine.stories_of((article.id,)) == found  # any sequence of ids


async def test_a_limit_past_what_the_database_counts_is_every_row(tmp_path: Path) -> None:
    """``search`` took ``limit=2**63``, but ``recent`` and ``story`` failed with SQLite's
    OverflowError ("Python int too large to convert to SQLite INTEGER"), and so did
    ``acknowledge`` and ``not_relevant`` of an alert id past it."""
    async with open_engine(config(tmp_path), start=False) as engine:
        await engine.run_once()
        for limit in (2**63, 10**30):
            assert len((await engine.search("russia", limit=limit)).hits) == 5
            assert len(await engine.recent(limit=limit)) == 5
            (article, _), *_ = await engine.recent(limit=1)
            story_id = (await engine.stories_of([article.id]))[article.id].id
            detail = await engine.story(story_id, limit=limit)
            assert detail is not None and article.id in {a.id for a in detail.articles}
            with pytest.raises(NewswatchError, match=rf"no alert #{limit}"):
                await engine.acknowledge(limit, 1)
            with pytest.raises(NewswatchError, match=rf"no alert #{limit}"):
                await engine.not_relevant(limit, 1)
        assert (await engine.delivery_status()).counts == {"pending": 5}


class Posts:
    """A sink that posts alerts and returns their message id."""

    def __init__(self) -> None:
        self.got: list[Alert] = []

    async def deliver(self, alert: Alert) -> str:
        self.got.append(alert)
        return f"m{len(self.got)}"


class PlainUpdate(Posts):
    def __init__(self) -> None:
        super().__init__()
        self.updates = 0

    def update(self, update: StoryUpdate) -> UpdateResult:
        self.updates += 1  # a post in the story's thread
        return UpdateResult(update.message_id)


class PlainDigest(Posts):
    def digest(self, digest: Any) -> str:
        return "d1"


@pytest.mark.parametrize(("sink", "error"), [
    (PlainUpdate(), r"default_sink: PlainUpdate\.update is not a coroutine function \(write "
                    r"'async def update\(self, update\)'\)"),
    (PlainDigest(), r"default_sink: PlainDigest\.digest is not a coroutine function \(write "
                    r"'async def digest\(self, digest\)'\)"),
])
async def test_a_sink_whose_update_or_digest_cannot_be_awaited_is_refused_at_start(
        tmp_path: Path, sink: Any, error: str) -> None:
    """Only ``deliver`` was checked: a plain ``def update`` ran (posting in the story's
    thread), failed to be awaited, and was retried, posting again at every retry while the
    route's later alerts waited; a plain ``def digest`` the same."""
    with pytest.raises(TypeError, match=error):
        async with open_engine(config(tmp_path), default_sink=sink, start=False):
            pass
    assert not (tmp_path / "nw.db").exists()  # refused before the store was opened


def wire(tmp_path: Path, stories: str) -> Config:
    (tmp_path / "wire").mkdir()
    return parse_config({
        "storage": {"path": "nw.db"},
        "sources": [{"name": "wire", "type": "folder", "path": "wire", "settle": 0}],
        "channels": {"alerts": {"target": 5, "stories": stories}},
        "rules": [{"name": "troops", "query": "troops"}],
    }, base_dir=tmp_path)


class UpdatesOddly(Posts):
    """A sink that edits a story's message, or posts in its thread, and returns ``returns``
    rather than an UpdateResult."""

    def __init__(self, returns: Any) -> None:
        super().__init__()
        self.returns = returns
        self.updates: list[StoryUpdate] = []

    async def update(self, update: StoryUpdate) -> Any:
        self.updates.append(update)
        return self.returns


@pytest.mark.parametrize("stories", ["thread", "edit"])
@pytest.mark.parametrize("returns", [None, "m7", {"message_id": "m7"}])
async def test_a_story_update_answered_with_no_update_result_is_sent_once(
        tmp_path: Path, stories: str, returns: Any, caplog: pytest.LogCaptureFixture) -> None:
    """``update`` returning a message id (as ``deliver`` does), None or a dict failed after
    the sink had done its work ("'str' object has no attribute 'message_id'"): the update was
    retried for ever, posting in the story's thread again at every retry, and the route's
    later alerts waited behind it. A str is the story's message now; anything else is logged
    and the story's message stays the one it was."""
    caplog.set_level(logging.WARNING, logger="watchers")
    sink = UpdatesOddly(returns)
    async with open_engine(wire(tmp_path, stories), default_sink=sink, start=False) as engine:
        engine.delivery.base_backoff = engine.delivery.max_backoff = 0.1
        for i in range(3):
            (tmp_path / "wire" / f"{i}.txt").write_text(
                f"Russian troops mass at Ukraine border, update {i}\n\nRussian troops massed "
                f"at the Ukraine border on Monday, officials said ({i}).\n")
            await asyncio.wait_for(engine.run_once(retry_within=1), 30)
        status = await engine.delivery_status()
    assert len(sink.got) == 1  # the story's first article posted it
    assert [u.article.title[-8:] for u in sink.updates] == ["update 1", "update 2"]
    assert "retry" not in status.counts and not status.backing_off
    # the second update is of the message the first one left
    assert sink.updates[1].message_id == ("m7" if returns == "m7" else "m1")
    if returns == "m7":
        assert "returned" not in caplog.text
    else:
        assert (f"UpdatesOddly.update returned {type(returns).__name__}, not an UpdateResult"
                in caplog.text)


class Quits:
    """An embedder's own source whose poll ends the process (``sys.exit()``, or Ctrl-C caught
    and raised again as it was)."""

    name = "mine"

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.closed = False

    async def poll(self, cursor: Mapping[str, str]) -> Poll:
        raise self.error

    async def aclose(self) -> None:
        self.closed = True


class Halt(BaseException):
    """A framework's own BaseException: a poll raising it ended its task unseen ("Task
    exception was never retrieved") and the source was never polled again."""


@pytest.mark.parametrize("error", [SystemExit("the source quits"), KeyboardInterrupt(),
                                   Halt("the framework stops")])
async def test_a_source_that_ends_the_process_fails_the_engine_which_closes_in_order(
        tmp_path: Path, error: BaseException) -> None:
    """A source's poll raising SystemExit or KeyboardInterrupt went through the event loop
    with the engine open (a bare traceback naming no source, and "Task exception was never
    retrieved"); from ``run_once`` it stopped the caller's loop as well. The engine fails
    instead, naming the source, and closes in order; what was stored stays."""
    cfg = config(tmp_path)
    said = f"source mine raised {type(error).__name__}" + (f": {error}" if str(error) else "")
    mine = Quits(error)
    async with open_engine(cfg, default_sink=Posts(), start=False) as engine:
        await engine.watch.add_source(cfg.sources[0].model_copy(update={"name": "mine"}), mine)
        with pytest.raises(NewswatchError, match=f"{said} while polling"):
            await asyncio.wait_for(engine.run_once(), 30)
        await engine.start()
        with pytest.raises(NewswatchError, match=f"{said} while polling"):
            await asyncio.wait_for(engine.failed(), 30)
    assert mine.closed
    sink = Posts()
    async with open_engine(cfg, default_sink=sink, start=False) as engine:  # opens at once
        await asyncio.wait_for(engine.run_once(), 30)
        assert await engine.count_articles() == 5
        assert (await engine.delivery_status()).counts == {"delivered": 5}


async def test_an_engine_used_from_another_event_loop_says_so_and_stays_whole(
        tmp_path: Path) -> None:
    """Called from another thread's event loop (``asyncio.run(engine.stop())`` in a worker
    thread), ``stop`` failed halfway with "got Future attached to a different loop": polling
    was stopped, delivery not, and leaving the engine's block raised the same RuntimeError.
    Changes and lookups worked or not by chance (the engine's locks belong to its loop; a
    waiter woken from another thread may never be). Each call says where to make it."""
    sink = Posts()
    async with open_engine(config(tmp_path), default_sink=sink) as engine:
        errors: dict[str, BaseException] = {}

        def elsewhere() -> None:
            for name, call in (("stop", engine.stop), ("search", lambda: engine.search("x")),
                               ("add_rule", lambda: engine.add_rule({"name": "x",
                                                                     "query": "troops"}))):
                try:
                    asyncio.run(call())
                except BaseException as exc:  # each is looked at below
                    errors[name] = exc

        await asyncio.wait_for(asyncio.to_thread(elsewhere), 30)
        assert set(errors) == {"stop", "search", "add_rule"}
        for name, exc in errors.items():
            assert isinstance(exc, NewswatchError), (name, exc)
            assert (f"Engine.{name} was called from another event loop than the engine's "
                    f"(call it in that loop: from another thread, with "
                    f"asyncio.run_coroutine_threadsafe(engine.{name}(…), loop))") in str(exc)
        assert "x" not in engine.rule_names()
        await asyncio.wait_for(engine.run_once(), 30)  # the engine runs on, in its own loop
        assert len((await engine.search("russia")).hits) == 5
    assert len(sink.got) == 5


@pytest.mark.parametrize(("kwargs", "says"), [
    ({"lease": 5}, "lease: a timedelta, not int"),
    ({"max_polls": "3"}, "max_polls: a whole number, not str"),
    ({"safety_poll": "30"}, "safety_poll: seconds as a number, not str"),
    ({"store_path": ""}, "store_path is empty"),
])
async def test_open_engines_arguments_of_the_wrong_kind_are_named(
        tmp_path: Path, kwargs: dict[str, object], says: str) -> None:
    """They failed later, naming nothing a caller wrote ("'<' not supported between 'int'
    and 'datetime.timedelta'", a FileNotFoundError of ''); nothing is opened."""
    with pytest.raises((TypeError, ValueError), match=re.escape(says)):
        async with open_engine(config(tmp_path), start=False, **kwargs):  # type: ignore[arg-type]
            pass
    assert not (tmp_path / "nw.db").exists()


async def test_a_rule_or_source_given_no_mapping_and_a_rule_given_no_name_are_named(
        tmp_path: Path) -> None:
    """add_rule(None) said "argument of type 'NoneType' is not iterable", add_source("x")
    "'str' object has no attribute 'get'", and recent(rule=5) was taken and found nothing."""
    async with open_engine(config(tmp_path), start=False, default_sink=Posts()) as engine:
        with pytest.raises(TypeError, match="the rule's fields: a mapping"):
            await engine.add_rule(None)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="the source's fields: a mapping"):
            await engine.add_source("x")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="rule: a str, not int"):
            await engine.recent(rule=5)  # type: ignore[arg-type]


async def test_an_unknown_source_of_any_size_or_shape_is_named_shortly(tmp_path: Path) -> None:
    """A lookup's source is a running one or one with stored articles (Engine.source_key): a
    name a hundred thousand characters long, a NUL, another server's feed key or a name with
    spaces around it is refused in one short line that names the known sources, at once, with
    a server and without one."""
    async with open_engine(config(tmp_path), start=False) as engine:
        await engine.run_once()
        known = engine.source_names()
        for name in ("x" * 100_000, "\x00bad", "@abc123", f" {known[0]} "):
            for guild in (None, 5):
                with pytest.raises(NewswatchError, match="no source named") as caught:
                    await asyncio.wait_for(engine.search("troops", source=name, guild=guild),
                                           10)
                said = str(caught.value)
                assert len(said) < 200 and "\n" not in said and f"known: {known[0]}" in said
