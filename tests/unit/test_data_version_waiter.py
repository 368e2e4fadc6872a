"""The SQLite waiter's reading of PRAGMA data_version when the read itself fails: a database
locked for a moment is no news and no lost channel; any other error loses the channel."""

import sqlite3
from types import SimpleNamespace
from typing import Any

import pytest

from taskmill.exceptions import DatabaseUnavailable
from taskmill.queue.sqlite import DataVersionWaiter


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


def _waiter(connection: _Connection) -> DataVersionWaiter:
    return DataVersionWaiter(SimpleNamespace(connection=connection))  # type: ignore[arg-type]  # duck-typed wrapper


def test_a_locked_read_is_no_news_and_the_next_read_sees_the_commit() -> None:
    waiter = _waiter(_Connection(1, _error(sqlite3.SQLITE_BUSY), 2, 2))

    assert waiter.check() is False  # locked for a moment
    assert waiter.check() is True  # 1 -> 2: another connection committed meanwhile
    assert waiter.check() is False


def test_any_other_error_loses_the_channel() -> None:
    waiter = _waiter(_Connection(1, sqlite3.ProgrammingError("Cannot operate on a closed db")))

    with pytest.raises(DatabaseUnavailable, match="closed db"):
        waiter.check()
