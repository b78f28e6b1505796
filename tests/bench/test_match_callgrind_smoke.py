"""bench/match_callgrind.py: its measured pass runs the deciding it counts, and a bad argument
is named before valgrind is looked for."""

from __future__ import annotations

import pytest

from tests.bench._bench import bench_module
from tests.conftest import corpora_or_skip


@pytest.mark.parametrize("kind", ["realistic", "generated"])
def test_the_measured_pass_decides_the_articles_it_was_given(
    monkeypatch: pytest.MonkeyPatch, kind: str,
) -> None:
    corpora_or_skip()
    mod = bench_module("match_callgrind")
    from watchers.rules import RuleSet

    decided: list[str] = []
    decide = RuleSet.decide

    sets: set[int] = set()

    def counting(self: RuleSet, article: object, **kwargs: object) -> object:
        decided.append(article.id)  # type: ignore[attr-defined]
        if id(self) not in sets:
            sets.add(id(self))
            queries = [r.query for r in self.rules]
            assert len(queries) == 50
            # the generated set's sloppy phrases ("russia word"~3); the realistic set has none
            assert any('"~' in q for q in queries) == (kind == "generated")
        return decide(self, article, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(RuleSet, "decide", counting)
    mod.child(50, 3, kind)
    # Twice over the bench's 300 articles to warm every cache, then the first three again.
    assert len(decided) == 603
    assert decided[600:] == decided[:3] == decided[300:303]
    assert len(sets) == 1


def test_a_bad_article_count_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    mod = bench_module("match_callgrind")
    assert mod.main(["--articles", "0"]) == 2
    assert "--articles must be from 1 to 300, not 0" in capsys.readouterr().err
