"""A step run on a database session of its own that waits for a lock only briefly: for tests
that a worker stalled inside a transaction (SIGSTOP, swap, a frozen VM) holds no lock that
another worker's loop needs."""

import threading
from collections.abc import Callable

from django.db import connection, connections

# PostgreSQL and MariaDB/MySQL only: on SQLite a writer's transaction locks the whole file.
_LOCK_WAIT_SQL = {
    "postgresql": "SET lock_timeout = '{ms}ms'",
    "mysql": "SET SESSION innodb_lock_wait_timeout = {s}",
}


def in_other_session[T](step: Callable[[], T], *, lock_wait: float = 1.0) -> T:
    """Run step on a connection of its own (in a thread) whose lock waits end after lock_wait
    seconds with the database's error; return what step returned, or raise what it raised."""
    outcome: dict[str, T] = {}
    failure: list[BaseException] = []

    def run() -> None:
        try:
            sql = _LOCK_WAIT_SQL[connection.vendor]
            with connection.cursor() as cursor:
                cursor.execute(sql.format(ms=int(lock_wait * 1000), s=max(1, round(lock_wait))))
            outcome["value"] = step()
        except BaseException as error:  # raised again in the caller's thread
            failure.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome["value"]
