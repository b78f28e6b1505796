"""What a member can type into /article, /search and /mute, the wrong way: nothing answers
with a traceback, nothing stored changes."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import SEEDS
from watchers.config import parse_config, parse_duration
from watchers.engine import open_engine
from watchers.errors import NewswatchError


async def test_garbage_article_ids_and_arguments_are_answered_cleanly(tmp_path: Path) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    cfg = parse_config({"storage": {"path": "nw.db"},
                        "sources": [{"name": "seeds", "type": "folder", "path": "seeds",
                                     "settle": 0}],
                        "rules": [{"name": "troops", "query": "troops"}]}, base_dir=tmp_path)
    async with open_engine(cfg, start=False) as engine:
        await engine.run_once()
        for wanted in ["", "   ", "%", "______", "'; DROP TABLE articles;--", "\x00",
                       "\udc80abcdef", "a" * 100_000]:
            assert await engine.article(wanted) is None, repr(wanted[:20])
        with pytest.raises(ValueError, match="longer than 100 years"):
            parse_duration("99999999d")  # /search since, /mute duration
        with pytest.raises(NewswatchError, match="no rule named"):
            await engine.mute("nope", timedelta(hours=1))
        assert await engine.count_articles() == 5
        recent = await engine.recent(limit=1)
        assert recent and await engine.article(recent[0][0].id[:8]) is not None
