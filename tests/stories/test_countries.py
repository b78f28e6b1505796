"""Every country is an actor of its own: two reports of one kind of event in two countries
("Plane crash in Nepal kills 72", "Plane crash in Brazil kills 61") were one story, the second
country's news an edit of the first's alert, and its outlet counted as corroborating it —
where the country was not among the few the clusterer knew."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest

from watchers.stories import StoryInput, cluster
from watchers.stories import features as f

AT = datetime(2026, 3, 1, 10, tzinfo=UTC)


def stories(*titles: str) -> list[list[str]]:
    items = [StoryInput(id=f"a{i}", title=t, text="", date=AT + timedelta(hours=i),
                        source=f"outlet{i}", url=None) for i, t in enumerate(titles)]
    return sorted(sorted(s.ids) for s in cluster(items))


@pytest.mark.parametrize(("one", "other"), [
    ("Plane crash in Nepal kills 72", "Plane crash in Brazil kills 61"),
    ("Volcano erupts in Iceland", "Volcano erupts in Indonesia"),
    ("Earthquake of magnitude 6.1 hits Chile", "Earthquake of magnitude 6.1 hits Peru"),
    ("Floods in Kenya leave thousands homeless", "Floods in Nigeria leave thousands homeless"),
])
def test_one_kind_of_event_in_two_countries_is_two_stories(one: str, other: str) -> None:
    assert stories(one, other) == [["a0"], ["a1"]]


def test_one_event_in_one_country_told_twice_is_one_story() -> None:
    assert stories("Plane crash in Nepal kills 72",
                   "Nepal plane crash kills 72, officials say") == [["a0", "a1"]]


def test_every_country_of_the_shipped_table_is_an_actor() -> None:
    """The list in features.py is the table's keys, less names that are everyday words or
    people's or states' names too; a country added to the table is added there."""
    text = resources.files("watchers.rules").joinpath("data/exonyms.toml").read_text("utf-8")
    keys = set(tomllib.loads(text)["aliases"])
    words = {"chad", "georgia", "guinea", "jersey", "jordan", "reunion"}
    assert keys - words <= set(f._ACTORS)
    assert not words & set(f._ACTORS)
    assert f._ACTORS["turkiye"] == "turkey" and f._ACTORS["netherland"] == "netherlands"
