"""Start-up steps that meet a database which is briefly not there: locked by another writer
(SQLite), or restarting, failing over or refusing connections for a moment. They are tried
again with a backoff a few times; a database that stays away ends the start, with its error.

Once started, the worker's loop reconnects on its own for as long as an outage lasts."""

import logging
import time
from collections.abc import Callable
from typing import Final

from django.db import DatabaseError, InterfaceError, connections

from ..exceptions import DatabaseUnavailable, QueueBusy
from ..queue.errors import translate

logger = logging.getLogger("taskmill.worker")

# 0.5 + 1 + 2 + 4 + 8 s between six tries: about 15 s, longer than a database restart takes.
START_TRIES: Final = 6
BACKOFF_MIN: Final = 0.5
BACKOFF_MAX: Final = 10.0


def retry_at_start[T](step: Callable[[], T], database_alias: str) -> T:
    """Run a start-up step; again, after a backoff, while the database is busy or unavailable,
    START_TRIES times at most. Any other error, or the last try's, is raised."""
    delay = BACKOFF_MIN
    for attempt in range(1, START_TRIES + 1):
        try:
            return step()
        except (DatabaseError, InterfaceError) as error:
            meant = translate(error)
            if attempt == START_TRIES or not isinstance(meant, QueueBusy | DatabaseUnavailable):
                raise
            if isinstance(meant, QueueBusy):
                logger.info("database busy at start, retrying in %.1f s: %s", delay, error)
            else:
                logger.warning(
                    "database unavailable at start, retrying in %.1f s: %s", delay, error
                )
                _forget_connection(database_alias)
            time.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)
    raise AssertionError("unreachable: the last try returns or raises")  # pragma: no cover


def _forget_connection(database_alias: str) -> None:
    # A connection the outage broke would fail the next try too; inside a caller's
    # transaction (a worker run in-process by a test) it is the caller's to handle.
    connection = connections[database_alias]
    if not connection.in_atomic_block:
        connection.close()
