"""The SQLite waiter: its reading of PRAGMA data_version (a database locked for a moment is no
news and no lost channel; any other error loses the channel), and its watch of the WAL file."""

import sqlite3
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from taskmill.exceptions import DatabaseUnavailable
from taskmill.queue.sqlite import (
    COMMIT_CHECK_INTERVAL,
    SETTLE_CHECK_INTERVAL,
    WATCHED_CHECK_INTERVAL,
    DataVersionWaiter,
)

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


class _Connection:
    """A sqlite3 connection whose PRAGMA data_version reads `versions` in turn, an exception
    in the list being raised instead."""

    def __init__(self, *versions: int | Exception) -> None:
        self.versions = list(versions)

    def execute(self, sql: str) -> Any:
        assert sql == "PRAGMA data_version"
        version = self.versions.pop(0)
        if isinstance(version, Exception):
            raise version
        return SimpleNamespace(fetchone=lambda: (version,))


def _error(code: int) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError("database is locked")
    error.sqlite_errorcode = code  # what sqlite3 sets on its own errors
    return error


def _waiter(connection: _Connection, wal_path: Path | None = None) -> DataVersionWaiter:
    wrapper: Any = SimpleNamespace(connection=connection)  # duck-typed: only .connection is read
    return DataVersionWaiter(wrapper, wal_path=None if wal_path is None else str(wal_path))


def test_a_locked_read_is_no_news_and_the_next_read_sees_the_commit() -> None:
    waiter = _waiter(_Connection(1, _error(sqlite3.SQLITE_BUSY), 2, 2))

    assert waiter.check() is False  # locked for a moment
    assert waiter.check() is True  # 1 -> 2: another connection committed meanwhile
    assert waiter.check() is False


def test_without_a_wal_file_to_watch_it_checks_every_25_ms() -> None:
    waiter = _waiter(_Connection(1))

    assert waiter.fileno() is None
    assert waiter.check_interval == COMMIT_CHECK_INTERVAL == 0.025


def test_any_other_error_loses_the_channel() -> None:
    waiter = _waiter(_Connection(1, sqlite3.ProgrammingError("Cannot operate on a closed db")))

    with pytest.raises(DatabaseUnavailable, match="closed db"):
        waiter.check()


@pytest.fixture
def wal_file(tmp_path: Path) -> Path:
    path = tmp_path / "db.sqlite3-wal"
    path.write_bytes(b"")
    return path


def _write(path: Path) -> None:
    with path.open("ab") as file:
        file.write(b"frame")


@linux_only
def test_a_write_that_shows_no_commit_yet_makes_it_look_again_soon(wal_file: Path) -> None:
    """A commit writes the WAL before it publishes itself: the watch may wake the worker in
    between, and the next look must not wait for the slow safety-net interval."""
    connection = _Connection(1, 1, 2)
    waiter = _waiter(connection, wal_file)
    try:
        assert waiter.check_interval == WATCHED_CHECK_INTERVAL
        _write(wal_file)

        assert waiter.check() is False  # written, not yet committed
        assert waiter.check_interval == SETTLE_CHECK_INTERVAL
        assert waiter.check() is True  # 1 -> 2
        assert waiter.check_interval == WATCHED_CHECK_INTERVAL
    finally:
        waiter.close()


@linux_only
def test_writes_from_before_the_sleep_are_forgotten_not_settled_on(wal_file: Path) -> None:
    """The worker's own writes, made between two sleeps, don't make it look every 2 ms."""
    waiter = _waiter(_Connection(1, 1), wal_file)
    try:
        _write(wal_file)
        waiter.forget_news()

        assert waiter.check() is False
        assert waiter.check_interval == WATCHED_CHECK_INTERVAL
    finally:
        waiter.close()
