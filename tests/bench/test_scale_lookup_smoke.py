"""bench/scale_lookup.py at a small size. Before, each kind timed 3 fixed queries 3 times over
(6 of its 9 samples, the p50 among them, repeats of a query just run); its tantivy column ran
``gov*`` as the word "gov*" and ``NEAR/5`` as AND, and once the url: kinds were added it raised
"Field does not exist: 'url'" before anything was saved. Now each kind draws distinct queries
of every band of frequency, each timed once; tantivy runs a real prefix and the same NEAR
window, "—" where it has no equivalent, and a failure of tantivy never loses the run."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.bench._bench import bench_module
from tests.conftest import corpora_or_skip
from watchers.rules import parse
from watchers.search import search
from watchers.store import SqliteStore

N = 1_500


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModuleType, Path]:
    corpora = corpora_or_skip()
    scale_store = bench_module("scale_store")
    # Its corpora and cache folders are module constants: these replace them for this module.
    setattr(scale_store, "CORPORA", corpora / "articles")  # noqa: B010
    setattr(scale_store, "CACHE", tmp_path_factory.mktemp("scale"))  # noqa: B010
    path: Path = scale_store.build(N)
    return bench_module("scale_lookup"), path


def test_each_kind_draws_distinct_queries_of_every_band_each_timed_once(
        bench: tuple[ModuleType, Path]) -> None:
    scale_lookup, path = bench
    drawn = scale_lookup.draw_queries(path, 6)
    assert set(drawn) == set(scale_lookup.KINDS)
    for kind, sets in drawn.items():
        texts = [q.text for name in scale_lookup.SETS for q in sets[name]]
        assert len(texts) == 6 * len(scale_lookup.SETS), kind
        # No query runs twice (in one column or in two), nor is one of the warm-up queries.
        assert len(set(texts)) == len(texts), f"{kind}: a query is drawn twice: {texts}"
        assert not set(texts) & {"warmup", "ukraine~"}
        bands = [q.band for q in sets["newest"]]
        if not kind.startswith("word"):
            assert sorted(bands) == sorted(["rare", "mid", "common"] * 2), (kind, bands)
        for text in texts:
            parse(text)


def test_the_run_is_saved_with_every_kind_and_a_reason_for_what_tantivy_cannot_do(
        bench: tuple[ModuleType, Path], capsys: pytest.CaptureFixture[str]) -> None:
    scale_lookup, path = bench
    scale_lookup.main(["--articles", str(N), "--per-kind", "3", "--no-cli", "--label", "t"])
    saved = json.loads((path.parent / f"results-{N}.json").read_text())["t"]
    assert set(saved["newswatch"]) == set(scale_lookup.KINDS)
    assert saved["per_kind"] == 3
    out = capsys.readouterr().out
    assert "3 distinct queries a kind, each timed once" in out
    tantivy = saved["tantivy"]
    if isinstance(tantivy, str):  # the package is not installed here
        assert "not installed" in tantivy
    else:
        for kind in scale_lookup.TANTIVY_CANNOT:
            assert tantivy[kind] is None
            assert scale_lookup.TANTIVY_CANNOT[kind] in out
        for kind in ("prefix", "NEAR", "phrase", "AND"):
            assert tantivy[kind] is not None, kind


def _tantivy_counts(scale_lookup: ModuleType, path: Path, kinds: tuple[str, ...]
                    ) -> list[tuple[str, int, int]]:
    tantivy, index, schema = scale_lookup.tantivy_index(path, path.parent / "tantivy-test")
    searcher = index.searcher()

    async def newswatch(text: str) -> int:
        async with await SqliteStore.open(path, lock=False, readonly=True) as store:
            return len((await search(store, text, limit=N)).hits)

    out = []
    for kind in kinds:
        for q in scale_lookup.draw_queries(path, 9)[kind]["newest"]:
            found = searcher.search(scale_lookup.tantivy_query(tantivy, schema, q.plan), N)
            out.append((q.text, asyncio.run(newswatch(q.text)), found.count))
    return out


def test_tantivy_runs_a_prefix_as_a_prefix(bench: tuple[ModuleType, Path]) -> None:
    pytest.importorskip("tantivy")
    scale_lookup, path = bench
    counts = _tantivy_counts(scale_lookup, path, ("prefix",))
    # Every word that starts so, as newswatch's (which also joins hyphenated compounds, so it
    # may find a few more); the word "gov*" as written found 42 articles where newswatch's
    # prefix found 1,152.
    assert all(tv <= nw for _, nw, tv in counts), counts
    assert sum(tv for _, _, tv in counts) >= 0.9 * sum(nw for _, nw, _ in counts) > 0, counts


def test_tantivy_runs_near_as_the_same_window_either_order(
        bench: tuple[ModuleType, Path]) -> None:
    pytest.importorskip("tantivy")
    scale_lookup, path = bench
    counts = _tantivy_counts(scale_lookup, path, ("NEAR",))
    # Tantivy's words are as written (no plural folding): it may find fewer, never more, and
    # never the AND of the two words it found before (far more than the window).
    assert all(tv <= nw for _, nw, tv in counts), counts
    assert sum(tv for _, _, tv in counts) >= 0.8 * sum(nw for _, nw, _ in counts), counts


def test_a_tantivy_query_that_fails_is_its_cells_dash_and_the_run_goes_on(
        bench: tuple[ModuleType, Path], capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tantivy")
    scale_lookup, path = bench
    Query = scale_lookup.Query
    queries = {
        "prefix": {"newest": [Query("gover*", "mid", ("prefix", "gover")),
                              Query("nofield:x", "mid", ("term-of", "nofield", "x"))]},
        "AND": {"newest": [Query("police AND court", "common",
                                 ("and", ("words", "police"), ("words", "court")))]},
        "url:": {"newest": [Query("url:bbc", "rare", None)]},
    }
    got = scale_lookup.run_tantivy(path, N, queries)
    assert got["prefix"] is None
    assert got["AND"] is not None
    assert got["url:"] is None
    out = capsys.readouterr().out
    assert "tantivy failed on prefix query 'nofield:x'" in out
    assert "its index has no link field" in out
