"""Translate driver errors into QueueBusy / DatabaseUnavailable, in this one place.

Decided by error codes and exception classes, never by message text.
"""

import sqlite3
from typing import Final

from django.db import utils

from ..exceptions import DatabaseUnavailable, QueueBusy, QueueError

# MySQL/MariaDB client and server error codes.
MYSQL_GONE: Final = frozenset({1927, 2002, 2003, 2006, 2013, 2055, 4031})  # lost / can't connect
MYSQL_BUSY: Final = frozenset({1205, 1213})  # lock wait timeout, deadlock

# PostgreSQL SQLSTATEs of a session the server ended, raised as InternalError by psycopg:
# idle_in_transaction_session_timeout (a worker stalled inside its transaction).
POSTGRES_SESSION_ENDED: Final = frozenset({"25P03"})

SQLITE_BUSY_CODES: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def _driver_error(error: BaseException) -> BaseException:
    return error.__cause__ if error.__cause__ is not None else error


def translate(error: BaseException) -> QueueError | None:
    """Return the Taskmill error a database error means, or None if it means a bug."""
    driver = _driver_error(error)
    if isinstance(driver, sqlite3.OperationalError):
        code = getattr(driver, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in SQLITE_BUSY_CODES:
            return QueueBusy(str(driver))
        return None
    mysql_code = _mysql_code(driver)
    if mysql_code is not None:
        if mysql_code in MYSQL_BUSY:
            return QueueBusy(str(driver))
        if mysql_code in MYSQL_GONE:
            return DatabaseUnavailable(str(driver))
        return None
    if getattr(driver, "sqlstate", None) in POSTGRES_SESSION_ENDED:
        return DatabaseUnavailable(str(driver))
    if isinstance(error, utils.InterfaceError | utils.OperationalError):
        # psycopg raises OperationalError for lost connections and failed connects.
        return DatabaseUnavailable(str(driver))
    return None


def _mysql_code(driver: BaseException) -> int | None:
    module = type(driver).__module__
    if not module.startswith("MySQLdb"):
        return None
    args = getattr(driver, "args", ())
    return args[0] if args and isinstance(args[0], int) else None
