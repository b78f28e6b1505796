"""bench/stories_ingest.py, bench/ingest_split.py and bench/stories_callgrind.py at a small
size. Before, each ingested its articles once to warm the caches and then timed (or counted)
ingesting the same articles again, in the same process: every word of them already in the
matcher's and the stories' per-word caches, which halves matching and grouping, so the figures
were of articles ingest had met, which it never is. Now, as bench/ingest.py does, each run
takes in other articles first and is measured on articles it has never seen."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.bench._bench import bench_module
from tests.conftest import corpora_or_skip
from watchers.models import Article
from watchers.rules import Rule, RuleSet


def _text(articles: list[Article]) -> set[tuple[str, str]]:
    return {(a.title, a.text or "") for a in articles}


def test_the_measured_articles_are_none_of_the_warm_up_ones() -> None:
    corpora_or_skip()
    si = bench_module("stories_ingest")
    articles, others, rules, titles = si.material(300, 100, 20, datetime.now(UTC))
    assert len(articles) == 300 and len(others) == 100
    assert not _text(articles) & _text(others)
    assert titles  # the live stories' headlines: other records again
    # The rules fire on the measured articles (they are made of their words).
    ruleset = RuleSet([Rule(name=r.name, query=r.query) for r in rules])
    assert sum(bool(ruleset.decide(a).decisions) for a in articles) > 10


def test_stories_ingest_times_each_run_in_a_process_warmed_on_other_articles(
        capsys: pytest.CaptureFixture[str]) -> None:
    corpora_or_skip()
    si = bench_module("stories_ingest")
    assert si.main(["--articles", "200", "--warm", "100", "--live", "0", "--repeat", "1",
                    "--rules", "20"]) == 0
    out = capsys.readouterr().out
    assert "each run a fresh process timed on articles it has never seen, after 100 others" in out
    assert "with       0 live stories" in out


def test_ingest_split_measures_each_run_on_articles_it_has_never_seen(
        capsys: pytest.CaptureFixture[str]) -> None:
    corpora_or_skip()
    split = bench_module("ingest_split")
    assert split.main(["--articles", "200", "--warm", "100", "--rules", "20",
                       "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "measured on articles it has never seen, after 100 others" in out
    assert "ex: matching" in out and "total CPU per article" in out


def test_stories_callgrind_counts_articles_its_process_has_not_ingested(
        tmp_path: Path) -> None:
    corpora_or_skip()
    cg = bench_module("stories_callgrind")
    bench_module("stories_ingest")
    si = sys.modules["stories_ingest"]  # the one the child imports
    setattr(cg, "ARTICLES", 150)  # noqa: B010 - module constants, smaller for the test
    setattr(cg, "WARM", 50)  # noqa: B010
    ingested: list[list[Article]] = []
    serving = si.serving

    def watching(db: Path, rules: object, articles: list[Article], **kw: object) -> object:
        ingested.append(articles)
        return serving(db, rules, articles, **kw)

    setattr(si, "serving", watching)  # noqa: B010 - to see what each ingest is handed
    try:
        cg.child(0, True)
    finally:
        setattr(si, "serving", serving)  # noqa: B010
    warm, counted = ingested
    assert len(warm) == 50 and len(counted) == 150
    assert not _text(warm) & _text(counted)
