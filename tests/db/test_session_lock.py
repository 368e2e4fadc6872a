"""Session locks (the autostart lock): one holder per name and database, on every dialect."""

from collections.abc import Iterator
from typing import Protocol

import pytest
from django.db import DEFAULT_DB_ALIAS

from taskmill.queue import get_queue
from taskmill.queue.session_lock import SessionLock

pytestmark = pytest.mark.django_db


class OpenLock(Protocol):
    def __call__(self, name: str = "test-lock") -> SessionLock: ...


@pytest.fixture
def open_lock() -> Iterator[OpenLock]:
    """Open session locks on the test database; release them all afterwards."""
    opened: list[SessionLock] = []

    def open_(name: str = "test-lock") -> SessionLock:
        lock = get_queue(DEFAULT_DB_ALIAS).open_session_lock(name, idle_timeout=30)
        opened.append(lock)
        return lock

    yield open_
    for lock in opened:
        lock.release()


def test_try_acquire__only_one_handle_holds_a_name(open_lock: OpenLock) -> None:
    first, second = open_lock(), open_lock()

    assert first.try_acquire() is True
    assert second.try_acquire() is False
    assert first.is_held() is True
    assert second.is_held() is False


def test_try_acquire__again_by_the_holder_keeps_it(open_lock: OpenLock) -> None:
    lock = open_lock()

    assert lock.try_acquire() is True
    assert lock.try_acquire() is True
    assert lock.is_held() is True


def test_release__lets_another_handle_take_the_lock(open_lock: OpenLock) -> None:
    first, second = open_lock(), open_lock()
    first.try_acquire()

    first.release()

    assert first.is_held() is False
    assert second.try_acquire() is True


def test_release__of_an_unheld_lock_does_nothing(open_lock: OpenLock) -> None:
    lock = open_lock()

    lock.release()

    assert lock.is_held() is False


def test_try_acquire__different_names_are_independent(open_lock: OpenLock) -> None:
    assert open_lock("one").try_acquire() is True
    assert open_lock("two").try_acquire() is True
