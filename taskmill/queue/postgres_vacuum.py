"""Vacuuming the task table from the worker, on PostgreSQL (queue/vacuum.py opens it; other
databases have no dead row versions to clear). Imported only there: psycopg may be absent.

Why: each claimed task leaves a dead entry at the front of the claim index, where every claim
starts its scan; only VACUUM removes them (docs/explanation/scale.md). Autovacuum visits a
table at most once per autovacuum_naptime (a minute by default, a server-wide setting), in
which a busy queue leaves tens of thousands. The VACUUM is sent on a connection of its own
without waiting for its end (libpq's asynchronous send), so the worker goes on claiming and
recording while it runs.
"""

import logging
from typing import Any, Final

import psycopg
from django.db import connections
from psycopg import pq

from ..models import TaskRecord

logger = logging.getLogger(__name__)

# INDEX_CLEANUP ON: the dead claim-index entries are the point; with the default (auto) a
# vacuum skips the indexes when under 2% of the table's pages changed, as after a few
# thousand tasks in a big table. SKIP_LOCKED: if autovacuum is at it already, leave it be.
# TRUNCATE FALSE: cutting empty pages off the table's end takes an ACCESS EXCLUSIVE lock,
# which would stall every claim meanwhile; autovacuum still does it.
OPTIONS: Final = "SKIP_LOCKED, TRUNCATE FALSE, INDEX_CLEANUP ON"
CANCEL_TIMEOUT: Final = 5.0


class TableVacuum:
    """One VACUUM at a time of the task table, started and polled without blocking."""

    def __init__(self, database_alias: str) -> None:
        self.wrapper = connections[database_alias]
        self.table = self.wrapper.ops.quote_name(TaskRecord._meta.db_table)
        self.connection: psycopg.Connection[Any] | None = None

    def dead_rows(self) -> int:
        """Return the task table's dead row versions, as the server's statistics count them."""
        with self.wrapper.cursor() as cursor:
            # The function behind pg_stat_user_tables.n_dead_tup, without the view's joins:
            # the leader asks every few seconds, idle or not.
            cursor.execute("SELECT pg_stat_get_dead_tuples(%s::regclass)", [self.table])
            row = cursor.fetchone()
        return int(row[0]) if row is not None else 0

    def start(self) -> bool:
        """Send the VACUUM on a new connection and return at once; False if it couldn't be."""
        if self.connection is not None:
            return True
        try:
            connection = self.wrapper.get_new_connection(self.wrapper.get_connection_params())
        except psycopg.Error as error:
            # Raw driver errors, not Django's: the supervisor's loop wouldn't expect them.
            logger.warning("could not connect to vacuum the task table: %s", error)
            return False
        try:
            connection.autocommit = True  # VACUUM can't run inside a transaction block
            connection.pgconn.send_query(f"VACUUM ({OPTIONS}) {self.table}".encode())
        except psycopg.Error as error:
            connection.close()
            logger.warning("could not start the task table's vacuum: %s", error)
            return False
        self.connection = connection
        return True

    def is_running(self) -> bool:
        """Return True while the VACUUM runs; once it has ended, log a failure and close."""
        if self.connection is None:
            return False
        pgconn = self.connection.pgconn
        failure = None
        try:
            pgconn.consume_input()
            if pgconn.is_busy():
                return True
            while (result := pgconn.get_result()) is not None:
                if result.status != pq.ExecStatus.COMMAND_OK:
                    failure = result.get_error_message()
        except psycopg.Error as error:
            failure = str(error)
        self.close()
        if failure is not None:
            # Vacuuming only keeps claims fast; autovacuum still runs. Never a worker's end.
            logger.warning("vacuum of the task table failed: %s", failure)
        return False

    def close(self) -> None:
        """Stop a VACUUM still running (PostgreSQL cancels it cleanly) and close its connection."""
        if self.connection is None:
            return
        connection, self.connection = self.connection, None
        try:
            if connection.pgconn.is_busy():
                connection.cancel_safe(timeout=CANCEL_TIMEOUT)
        except psycopg.Error as error:
            logger.warning("could not cancel the task table's vacuum: %s", error)
        finally:
            connection.close()
