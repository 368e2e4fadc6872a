"""Retry policy: exponential backoff with +/-25% jitter and a cap; retry_on matching."""

import random

import pytest

from taskmill.exceptions import Retry
from taskmill.retry import (
    DEFAULT_RETRY_DELAY,
    DEFAULT_RETRY_MAX_DELAY,
    JITTER,
    backoff_delay,
    is_retryable,
)


class FixedRandom(random.Random):
    """A Random whose uniform(a, b) always returns a (low=True) or b."""

    def __init__(self, *, low: bool) -> None:
        super().__init__(0)
        self.low = low

    def uniform(self, a: float, b: float) -> float:
        return a if self.low else b


def test_backoff_delay__defaults_start_near_one_second_and_cap_at_an_hour() -> None:
    assert DEFAULT_RETRY_DELAY == 1.0
    assert DEFAULT_RETRY_MAX_DELAY == 3600.0
    assert JITTER == 0.25


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5, 10])
def test_backoff_delay__doubles_per_attempt_within_the_jitter_band(attempt: int) -> None:
    nominal = 2.0 ** (attempt - 1)

    low = backoff_delay(attempt, rng=FixedRandom(low=True))
    high = backoff_delay(attempt, rng=FixedRandom(low=False))

    assert low == pytest.approx(nominal * (1 - JITTER))
    assert high == pytest.approx(nominal * (1 + JITTER))


def test_backoff_delay__jitter_spreads_delays_of_the_same_attempt() -> None:
    rng = random.Random(1234)  # noqa: S311 - jitter under test, not a secret

    delays = [backoff_delay(3, rng=rng) for _ in range(200)]

    assert len(set(delays)) > 100
    assert all(4 * 0.75 <= delay <= 4 * 1.25 for delay in delays)


def test_backoff_delay__uses_the_base() -> None:
    assert backoff_delay(3, base=0.5, rng=FixedRandom(low=True)) == pytest.approx(
        0.5 * 4 * (1 - JITTER)
    )


def test_backoff_delay__never_exceeds_the_cap() -> None:
    rng = random.Random(7)  # noqa: S311 - jitter under test, not a secret

    delays = [backoff_delay(attempt, cap=60.0, rng=rng) for attempt in range(1, 40)]

    assert max(delays) == 60.0
    assert all(delay <= 60.0 for delay in delays)


def test_backoff_delay__huge_attempt_numbers_do_not_overflow() -> None:
    assert backoff_delay(10_000, rng=FixedRandom(low=False)) == DEFAULT_RETRY_MAX_DELAY


@pytest.mark.parametrize("attempt", [0, -1])
def test_backoff_delay__attempt_below_one_is_refused(attempt: int) -> None:
    with pytest.raises(ValueError, match=f"attempt must be >= 1, got {attempt}"):
        backoff_delay(attempt)


class NetworkError(Exception):
    pass


class FlakyNetworkError(NetworkError):
    pass


def test_is_retryable__any_exception_when_retry_on_is_empty() -> None:
    assert is_retryable(ValueError("x"), ())
    assert is_retryable(NetworkError(), ())
    assert is_retryable(Retry(), ())


@pytest.mark.parametrize("error", [KeyboardInterrupt(), SystemExit(1), GeneratorExit()])
def test_is_retryable__base_exceptions_are_not_retried_by_default(error: BaseException) -> None:
    assert not is_retryable(error, ())


def test_is_retryable__retry_on_matches_classes_and_subclasses_only() -> None:
    retry_on = (NetworkError,)

    assert is_retryable(NetworkError(), retry_on)
    assert is_retryable(FlakyNetworkError(), retry_on)
    assert not is_retryable(ValueError(), retry_on)


def test_is_retryable__retry_on_may_name_several_classes() -> None:
    retry_on = (KeyError, TimeoutError)

    assert is_retryable(KeyError("k"), retry_on)
    assert is_retryable(TimeoutError(), retry_on)
    assert not is_retryable(ValueError(), retry_on)
