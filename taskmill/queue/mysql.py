"""MariaDB/MySQL queue.

Quirks handled:
- No UPDATE ... RETURNING. A claim selects ids with FOR UPDATE SKIP LOCKED (MariaDB 10.6+,
  MySQL 8.0+), then updates them by id and reads them back, in one transaction; a plain read
  first answers the polls that find nothing, most of them. A batch of final outcomes is one
  UPDATE ... JOIN in a transaction, kept when it matched every row and undone otherwise
  (each row then takes the one-row path).
- Django runs MySQL connections at READ COMMITTED, so SKIP LOCKED doesn't take gap locks
  that would make concurrent claimers deadlock.
- A locking range scan still locks the first index entry past its range: on an index led by
  state, a live running row. The shared rescue pass, heartbeat and dead-worker clean-up
  (base.py) therefore find their rows with a plain read and lock, update or delete them by
  primary key, so a worker stalled in a transaction holds no row another worker's loop
  waits on.
- Times come from UTC_TIMESTAMP(6): Django stores UTC, and CURRENT_TIMESTAMP would be in the
  session's time zone. A queue database with its own DATABASES TIME_ZONE is not supported.
- No partial indexes: indexes.PartialIndex falls back to full indexes led by the state column.
- No push notifications: workers poll with a short adaptive interval.
- enqueue_many()'s table of per-row values is a UNION ALL of SELECTs: MariaDB names the
  columns of a VALUES list after its first row's values, and they can't be renamed.
- Session locks are GET_LOCK() named locks on a connection of their own. Their names are
  server-wide, so the database's name is part of them (hashed: at most 64 characters); a
  short session wait_timeout makes the server end the session of a holder whose host
  vanished.
"""

import contextlib
import hashlib
from collections.abc import Sequence
from functools import cached_property
from math import ceil
from typing import Any
from uuid import UUID

import MySQLdb
from django.db import DatabaseError, transaction

from ..exceptions import DatabaseUnavailable
from ..ids import dashed
from ..models import TaskRecord
from ..states import State
from .base import Queue
from .finishing import FinalRow
from .lease import MAX_STORED_ATTEMPTS, ClaimRequest
from .session_lock import SessionLock


class MySQLQueue(Queue):
    def end_stalled_transactions_after(self, seconds: float) -> None:
        # MariaDB only: MySQL has no such setting (its lock waits end after
        # innodb_lock_wait_timeout, 50 s by default, with an error the worker's loop survives).
        if getattr(self.connection, "mysql_is_mariadb", False):  # the stubs lack it
            with self.connection.cursor() as cursor:
                cursor.execute(f"SET SESSION idle_transaction_timeout = {max(1, ceil(seconds))}")

    def _id_values(self, hex_ids: Sequence[str]) -> list[Any]:
        if not self.connection.features.has_native_uuid_field:
            return super()._id_values(hex_ids)
        # MariaDB's uuid column: mysqlclient writes a UUID as the literal of its str(), so the
        # dashed text is the same statement without a UUID object per row.
        return [dashed(hex_id) for hex_id in hex_ids]

    def _row_table(self, width: int, count: int) -> str:
        names = ", ".join(f"%s AS column{index}" for index in range(1, width + 1))
        row = ", ".join(["%s"] * width)
        return " UNION ALL ".join([f"SELECT {names}", *[f"SELECT {row}"] * (count - 1)])

    def open_session_lock(self, name: str, *, idle_timeout: float) -> SessionLock:
        return NamedLock(self, name, idle_timeout)

    def _finish_sql(self, rows: int) -> str | None:
        table, c = self.quoted_names()
        # The batch's values as a derived table (see _row_table), in the order
        # _finish_final_batch binds them: id, owner, attempt, then the five written.
        return f"""
            UPDATE {table} AS t JOIN ({self._row_table(8, rows)}) AS v ON t.{c["id"]} = v.column1
            SET t.{c["state"]} = v.column4,
                t.{c["errors"]} = v.column5,
                t.{c["return_value"]} = v.column6,
                t.{c["finished_at"]} = v.column7,
                t.{c["expires_at"]} = v.column8,
                t.{c["lease_owner"]} = NULL,
                t.{c["lease_expires_at"]} = NULL,
                t.{c["cancel_requested_at"]} = NULL,
                t.{c["unique_key"]} = NULL
            WHERE t.{c["state"]} = '{State.RUNNING.value}'
              AND t.{c["lease_owner"]} = v.column2
              AND t.{c["attempts"]} = v.column3
              AND NOT t.{c["has_dependants"]}
        """  # noqa: S608 - only quoted identifiers, placeholders and a State constant

    def _write_final_batch(
        self, sql: str, params: list[Any], rows: Sequence[FinalRow]
    ) -> set[UUID]:
        # No RETURNING: the count of rows the UPDATE matched (Django connects with
        # CLIENT.FOUND_ROWS) says whether every row passed the fence. Nearly always it does;
        # otherwise the batch is undone and each row takes the one-row path, which tells a
        # lost lease from a task with dependants.
        with transaction.atomic(using=self.database_alias):
            with self.connection.cursor() as cursor:
                cursor.execute(sql, params)
                matched = cursor.rowcount
            if matched == len(rows):
                return {row.lease.task_id for row in rows}
            transaction.set_rollback(True, using=self.database_alias)
        return set()

    def _claim(self, request: ClaimRequest) -> list[TaskRecord]:
        queues = list(request.queue_names)
        names = ", ".join(["%s"] * len(queues))
        with self.connection.cursor() as cursor:
            # Polling is how a worker learns of new tasks here, and most polls find none: one
            # plain read answers them, without a transaction or a lock.
            cursor.execute(self._any_ready_sql.format(names=names), queues)
            if cursor.fetchone() is None:
                return []
        with transaction.atomic(using=self.database_alias), self.connection.cursor() as cursor:
            cursor.execute(self._pick_sql.format(names=names), [*queues, request.limit])
            ids = [row[0] for row in cursor.fetchall()]
            if not ids:
                return []
            marks = ", ".join(["%s"] * len(ids))
            lease = round(request.lease_seconds * 1_000_000)
            worker = request.worker_id
            cursor.execute(self._take_sql.format(ids=marks), [worker, lease, worker, *ids])
            # Read under the transaction's locks, as the UPDATE left them.
            cursor.execute(self._claimed_rows_sql.format(ids=marks), ids)
            return self.rows.records(cursor, self.database_alias)

    # The claim's statements, written out once rather than built by the ORM on every claim
    # (which cost more CPU than the round trips). {names} and {ids} are lists of %s.

    @cached_property
    def _ready_condition(self) -> str:
        _, c = self.quoted_names()
        return (
            f"{c['state']} = '{State.READY.value}' AND {c['queue_name']} IN ({{names}})"
            f" AND {c['run_after']} <= UTC_TIMESTAMP(6) AND {c['attempts']} < {MAX_STORED_ATTEMPTS}"
        )

    @cached_property
    def _any_ready_sql(self) -> str:
        table, _ = self.quoted_names()
        return f"SELECT 1 FROM {table} WHERE {self._ready_condition} LIMIT 1"  # noqa: S608 - quoted identifiers only

    @cached_property
    def _pick_sql(self) -> str:
        table, c = self.quoted_names()
        return (
            f"SELECT {c['id']} FROM {table} WHERE {self._ready_condition}"  # noqa: S608 - quoted identifiers only
            f" ORDER BY {c['priority']} DESC, {c['run_after']}, {c['id']}"
            " LIMIT %s FOR UPDATE SKIP LOCKED"
        )

    @cached_property
    def _take_sql(self) -> str:
        table, c = self.quoted_names()
        now = "UTC_TIMESTAMP(6)"
        return (
            f"UPDATE {table} SET {c['state']} = '{State.RUNNING.value}',"  # noqa: S608 - quoted identifiers only
            f" {c['attempts']} = {c['attempts']} + 1, {c['lease_owner']} = %s,"
            f" {c['lease_expires_at']} = {now} + INTERVAL %s MICROSECOND,"
            f" {c['started_at']} = COALESCE({c['started_at']}, {now}),"
            f" {c['last_attempted_at']} = {now},"
            f" {c['worker_ids']} = JSON_ARRAY_APPEND({c['worker_ids']}, '$', %s)"
            f" WHERE {c['id']} IN ({{ids}})"
        )

    @cached_property
    def _claimed_rows_sql(self) -> str:
        table, c = self.quoted_names()
        return f"SELECT * FROM {table} WHERE {c['id']} IN ({{ids}})"  # noqa: S608 - quoted identifiers only


class NamedLock(SessionLock):
    """GET_LOCK on a connection of its own; closing the connection releases it."""

    def __init__(self, queue: MySQLQueue, name: str, idle_timeout: float) -> None:
        self.queue = queue
        database = str(queue.connection.settings_dict["NAME"])
        digest = hashlib.sha256(f"{database}\0{name}".encode()).hexdigest()
        self.name = f"taskmill:{digest[:48]}"
        self.idle_timeout = max(1, int(idle_timeout))
        self.connection: Any = None

    def _query(self, connection: Any, sql: str, params: list[object]) -> Any:
        cursor = connection.cursor()
        try:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        finally:
            cursor.close()
        return row[0] if row else None

    def try_acquire(self) -> bool:
        if self.connection is not None:
            return True
        wrapper = self.queue.connection
        try:
            connection = wrapper.get_new_connection(wrapper.get_connection_params())
            connection.autocommit(True)
            self._query(connection, "SET SESSION wait_timeout = %s", [self.idle_timeout])
            acquired = self._query(connection, "SELECT GET_LOCK(%s, 0)", [self.name])
        except (DatabaseError, MySQLdb.Error) as error:
            raise DatabaseUnavailable(f"can't take the session lock: {error}") from error
        if acquired != 1:
            connection.close()
            return False
        self.connection = connection
        return True

    def is_held(self) -> bool:
        if self.connection is None:
            return False
        try:
            owner = self._query(
                self.connection, "SELECT IS_USED_LOCK(%s) = CONNECTION_ID()", [self.name]
            )
        except MySQLdb.Error:
            owner = None
        if owner != 1:
            self.release()
            return False
        return True

    def release(self) -> None:
        if self.connection is not None:
            # An error here means the session is already gone, and the lock with it.
            with contextlib.suppress(MySQLdb.Error):
                self.connection.close()
            self.connection = None
