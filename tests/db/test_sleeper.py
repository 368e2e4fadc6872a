"""The worker's Sleeper: SIGUSR1 (the autostart wake-up) is news; SIGTERM is a stop signal;
a committed enqueue is news through the queue's waiter, where the database has one."""

import contextlib
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, transaction

from taskmill.models import TaskRecord
from taskmill.queue import get_queue
from taskmill.queue.sqlite import WATCHED_CHECK_INTERVAL
from taskmill.worker.sleeper import WAKE_SIGNAL, Sleeper, Wake
from tests.testapp import tasks


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


def _enqueue_from_another_connection(after: float, *, commit: bool) -> threading.Thread:
    """Enqueue a task from a thread (so its own connection) once `after` seconds have passed,
    committing it or rolling it back."""

    def enqueue() -> None:
        time.sleep(after)
        try:
            with contextlib.suppress(_RolledBack), transaction.atomic():
                tasks.noop.enqueue()
                if not commit:
                    raise _RolledBack
        finally:
            connection.close()

    thread = threading.Thread(target=enqueue)
    thread.start()
    return thread


class _RolledBack(Exception):
    pass


@pytest.mark.only_on("postgresql", "sqlite")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("commit_at", ["before the sleep", "during the sleep"])
def test_sleep__an_enqueue_committed_elsewhere_is_news_at_once(
    sleeper: tuple[Sleeper, list[str]], commit_at: str
) -> None:
    """The wake-up channel itself: PostgreSQL LISTEN/NOTIFY, SQLite's data_version.

    A commit between the worker's last claim and its sleep is news too: had the sleep
    forgotten it, the task would wait for the next poll.
    """
    waiting, _ = sleeper
    waiting.open_waiter_if_needed()
    assert waiting.waiter is not None
    try:
        if commit_at == "before the sleep":
            _enqueue_from_another_connection(0, commit=True).join()
            thread = None
        else:
            thread = _enqueue_from_another_connection(0.3, commit=True)
        # Polling alone would sleep the whole 60 s and say TIMEOUT.
        assert waiting.sleep(60, []) == Wake.NEWS
        if thread is not None:
            thread.join()
    finally:
        waiting.close_waiter()


@pytest.mark.only_on("sqlite")
@pytest.mark.django_db(transaction=True)
def test_sleep__the_workers_own_commits_are_no_news(sleeper: tuple[Sleeper, list[str]]) -> None:
    """Its claims and heartbeats would otherwise wake it for one more claim each."""
    waiting, _ = sleeper
    waiting.open_waiter_if_needed()
    try:
        tasks.noop.enqueue()  # on the connection the waiter reads

        assert waiting.sleep(0.3, []) == Wake.TIMEOUT
    finally:
        waiting.close_waiter()


@pytest.mark.only_on("sqlite")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")
@pytest.mark.django_db(transaction=True)
def test_sleep__on_linux_a_commit_elsewhere_makes_the_waiters_descriptor_readable(
    sleeper: tuple[Sleeper, list[str]],
) -> None:
    """The worker sleeps on a watch of the WAL file, not on a 25 ms timer."""
    waiting, _ = sleeper
    waiting.open_waiter_if_needed()
    waiter = waiting.waiter
    assert waiter is not None
    try:
        fd = waiter.fileno()
        assert fd is not None
        assert waiter.check_interval == WATCHED_CHECK_INTERVAL
        waiter.check()  # consumes what setting the test up wrote

        _enqueue_from_another_connection(0, commit=True).join()

        assert select.select([fd], [], [], 10)[0] == [fd]
        assert waiter.check() is True
    finally:
        waiting.close_waiter()


@pytest.mark.only_on("sqlite")
@pytest.mark.django_db(transaction=True)
def test_sleep__a_new_connection_is_news_once(sleeper: tuple[Sleeper, list[str]]) -> None:
    """Two connections' data_version numbers aren't comparable; a commit may have fallen
    between them, so the first check on the new one says news."""
    waiting, _ = sleeper
    waiting.open_waiter_if_needed()
    try:
        connection.close()
        assert waiting.sleep(0.1, []) == Wake.TIMEOUT  # closed: the supervisor reconnects
        connection.ensure_connection()

        assert waiting.sleep(60, []) == Wake.NEWS
        assert waiting.sleep(0.1, []) == Wake.TIMEOUT
    finally:
        waiting.close_waiter()


@pytest.mark.only_on("postgresql", "sqlite")
@pytest.mark.django_db(transaction=True)
def test_sleep__an_enqueue_rolled_back_is_no_news(sleeper: tuple[Sleeper, list[str]]) -> None:
    waiting, _ = sleeper
    waiting.open_waiter_if_needed()
    try:
        thread = _enqueue_from_another_connection(0.1, commit=False)
        thread.join()
        assert waiting.sleep(1.0, []) == Wake.TIMEOUT
        assert not TaskRecord.objects.exists()
    finally:
        waiting.close_waiter()


@pytest.mark.only_on("mysql")
@pytest.mark.django_db(transaction=True)
def test_sleep__mariadb_has_no_push_and_the_worker_polls(
    sleeper: tuple[Sleeper, list[str]],
) -> None:
    waiting, _ = sleeper
    waiting.open_waiter_if_needed()
    thread = _enqueue_from_another_connection(0.1, commit=True)
    assert waiting.sleep(1.0, []) == Wake.TIMEOUT
    thread.join()
    assert TaskRecord.objects.count() == 1
