"""Retry policy: exponential backoff with jitter and a cap, and retry_on matching. Pure."""

import random
from typing import Final

DEFAULT_RETRY_DELAY: Final = 1.0
DEFAULT_RETRY_MAX_DELAY: Final = 3600.0
JITTER: Final = 0.25


def backoff_delay(
    attempt: int,
    *,
    base: float = DEFAULT_RETRY_DELAY,
    cap: float = DEFAULT_RETRY_MAX_DELAY,
    rng: random.Random | None = None,
) -> float:
    """Return seconds to wait before the attempt after `attempt` (1-based), jittered and capped.

    The delay doubles with each attempt; jitter of +/-25% spreads retries of tasks that failed
    together, so they don't hammer a recovering service in lockstep.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    # Bound the exponent so a task with thousands of attempts can't overflow a float.
    raw = base * 2.0 ** min(attempt - 1, 64)
    jitter = (rng or random).uniform(1 - JITTER, 1 + JITTER)
    return min(cap, raw * jitter)


def is_retryable(error: BaseException, retry_on: tuple[type[BaseException], ...]) -> bool:
    """Tell whether an error may be retried: any Exception when retry_on is empty."""
    if retry_on:
        return isinstance(error, retry_on)
    return isinstance(error, Exception)
