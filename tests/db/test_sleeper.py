"""The worker's Sleeper: SIGUSR1 (the autostart wake-up) is news; SIGTERM is a stop signal."""

import os
import signal
from collections.abc import Iterator

import pytest
from django.db import DEFAULT_DB_ALIAS

from taskmill.queue import get_queue
from taskmill.worker.sleeper import WAKE_SIGNAL, Sleeper, Wake


@pytest.fixture
def sleeper() -> Iterator[tuple[Sleeper, list[str]]]:
    """A Sleeper with its signal handlers installed; the list records stop requests."""
    stops: list[str] = []
    sleeper = Sleeper(get_queue(DEFAULT_DB_ALIAS))
    restore = sleeper.install_signal_handlers(lambda: stops.append("stop"))
    yield sleeper, stops
    restore()


def test_sleep__the_wake_signal_is_news(sleeper: tuple[Sleeper, list[str]]) -> None:
    waiting, stops = sleeper

    os.kill(os.getpid(), WAKE_SIGNAL)

    assert waiting.sleep(30, []) == Wake.NEWS
    assert stops == []


def test_sleep__sigterm_is_a_signal_and_requests_a_stop(
    sleeper: tuple[Sleeper, list[str]],
) -> None:
    waiting, stops = sleeper

    os.kill(os.getpid(), signal.SIGTERM)

    assert waiting.sleep(30, []) == Wake.SIGNAL
    assert stops == ["stop"]


def test_sleep__a_stop_signal_with_a_wake_signal_is_a_signal(
    sleeper: tuple[Sleeper, list[str]],
) -> None:
    waiting, stops = sleeper

    os.kill(os.getpid(), WAKE_SIGNAL)
    os.kill(os.getpid(), signal.SIGINT)

    assert waiting.sleep(30, []) == Wake.SIGNAL
    assert stops == ["stop"]


def test_install_signal_handlers__restore_puts_the_wake_signal_back() -> None:
    before = signal.getsignal(WAKE_SIGNAL)
    sleeper = Sleeper(get_queue(DEFAULT_DB_ALIAS))

    restore = sleeper.install_signal_handlers(lambda: None)
    installed = signal.getsignal(WAKE_SIGNAL)
    restore()

    assert installed not in (before, signal.SIG_DFL, signal.SIG_IGN)
    assert signal.getsignal(WAKE_SIGNAL) == before
