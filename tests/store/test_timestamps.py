"""The stored timestamp form is written and read by fast paths that equal strftime/strptime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchers.store.sqlite._db import dt, iso

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_ZONES = st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5)),
                          timezone(timedelta(hours=5, minutes=30))])


@settings(max_examples=400, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                    timezones=_ZONES))
def test_a_time_is_written_and_read_back_as_strftime_and_strptime_do(when: datetime) -> None:
    written = iso(when)
    utc = when.astimezone(UTC)
    # the year always in four digits, which glibc's strftime does not pad below 1000: the
    # stored form sorts as time does and SQLite's date functions read it
    assert written == f"{utc.year:04d}" + utc.strftime(_FORMAT)[len(str(utc.year)):]
    assert len(written) == 27
    if utc.year >= 1000:
        assert written == utc.strftime(_FORMAT)
    assert dt(written) == datetime.strptime(written, _FORMAT).replace(tzinfo=UTC) == when


@pytest.mark.parametrize("text", [
    "2022-01-01 00:00:00.000000Z",   # another separator: fromisoformat would take it
    "2022-01-01T00:00:00,000000Z",
    "2022-1-01T00:00:00.0000000Z",
    "2022-01-01T00:00:00.00000Z",
    "2022-01-01T00:00:00.000000+",
])
def test_anything_but_the_stored_form_is_read_as_strptime_reads_it(text: str) -> None:
    try:
        expected: datetime | None = datetime.strptime(text, _FORMAT).replace(tzinfo=UTC)
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(ValueError):
            dt(text)
    else:
        assert dt(text) == expected
