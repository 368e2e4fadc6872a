"""Wait on conditions, never on time: `wait_until` polls a predicate until it holds."""

import time
from collections.abc import Callable
from typing import Protocol


class WaitUntil(Protocol):
    """The signature of `wait_until`, for annotating the fixture of the same name."""

    def __call__[T](
        self,
        predicate: Callable[[], T],
        *,
        timeout: float = 10.0,
        interval: float = 0.05,
        message: str | Callable[[], str] = "",
    ) -> T: ...


def wait_until[T](
    predicate: Callable[[], T],
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str | Callable[[], str] = "",
) -> T:
    """Call `predicate` every `interval` seconds until it returns a truthy value; return it.

    Raise AssertionError naming `message` and the last value seen if `timeout` seconds pass
    first. Exceptions from the predicate propagate at once: a broken predicate is a bug, not
    a condition to wait out.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    # A callable message is built at the timeout, so it shows the state then, not at the start.
    described = message() if callable(message) else message
    what = described or getattr(predicate, "__qualname__", repr(predicate))
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {value!r}")
