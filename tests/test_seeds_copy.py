"""The suite reads its own copy of the sample articles (a user's file dropped into seeds/ must
not change what the tests see); the copy and the project's seeds/ equal ../shared/seeds."""

from __future__ import annotations

import pytest

from tests.conftest import REPO, SEEDS


def test_the_seed_copies_are_byte_for_byte_the_shared_seeds() -> None:
    shared = REPO.parent / "shared" / "seeds"
    if not shared.is_dir():
        pytest.skip(f"shared seeds not found at {shared}; this test needs ../shared/seeds")
    originals = {p.name: p.read_bytes() for p in shared.iterdir() if p.is_file()}
    assert {p.name: p.read_bytes() for p in SEEDS.iterdir()} == originals
    project = {p.name: p.read_bytes() for p in (REPO / "seeds").iterdir()
               if p.name in originals}
    assert project == originals
