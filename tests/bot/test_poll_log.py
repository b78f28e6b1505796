"""The one log line ``newswatch run`` writes per poll that found something."""

from __future__ import annotations

import logging

import pytest

from bot.runner import report_poll
from watchers.service import PollReport


@pytest.mark.parametrize(("report", "line"), [
    (PollReport("wire", new=12, baseline=True),
     "source wire: first poll, 12 items recorded as a baseline (no alerts)"),
    # backfill: the newest few of a first poll alert, which the line used to deny
    (PollReport("wire", new=12, alerts=3, baseline=True),
     "source wire: first poll, 12 items recorded as a baseline, 3 alert(s) from backfill"),
    (PollReport("wire", new=2, alerts=1), "source wire: 2 new article(s), 1 alert(s)"),
])
def test_a_poll_is_one_line_that_says_what_alerted(
        report: PollReport, line: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        report_poll(report)
    assert [r.getMessage() for r in caplog.records] == [line]


def test_a_failed_or_empty_poll_writes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        report_poll(PollReport("wire", error="HTTP 503"))
        report_poll(PollReport("wire", not_modified=True))
    assert caplog.records == []
