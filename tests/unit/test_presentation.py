"""Durations, relative times and progress as people read them."""

from datetime import UTC, datetime, timedelta

import pytest

from taskmill.presentation import (
    ago_text,
    duration_text,
    last_error_line,
    progress_bar,
    progress_fraction,
)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.42, "0.4s"),
        (12, "12s"),
        (192, "3m 12s"),
        (3600, "1h"),
        (3 * 86400 + 7200, "3d 2h"),
        (-30, "-30s"),
    ],
)
def test_duration_text(seconds: float, text: str) -> None:
    assert duration_text(timedelta(seconds=seconds)) == text


def test_ago_text__past_future_and_none() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert ago_text(now - timedelta(minutes=5), now) == "5m ago"
    assert ago_text(now + timedelta(seconds=20), now) == "in 20s"
    assert ago_text(None, now) == "-"


def test_progress_bar__fraction_count_and_message() -> None:
    assert progress_bar({"done": 5, "total": 10, "message": "half"}, width=10) == (
        "[====>     ]  50% (5/10) half"
    )
    assert progress_bar({"done": 7, "total": None, "message": ""}) == "7 done"
    assert progress_bar(None) == "no progress reported"


def test_progress_fraction__clamped_and_unknown_without_total() -> None:
    assert progress_fraction({"done": 12, "total": 10}) == 1.0
    assert progress_fraction({"done": 1, "total": 0}) is None
    assert progress_fraction("garbage") is None


def test_last_error_line__the_exception_line_of_the_last_error() -> None:
    errors = [{"traceback": "old\nKeyError: 1\n"}, {"traceback": "T\n  f\nValueError: bad\n"}]
    assert last_error_line(errors) == "ValueError: bad"
    assert last_error_line([]) == ""
