"""MariaDB/MySQL queue.

Quirks handled:
- No UPDATE ... RETURNING: a claim selects ids with FOR UPDATE SKIP LOCKED (MariaDB 10.6+,
  MySQL 8.0+), then updates them by id, in one transaction.
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
from datetime import timedelta
from math import ceil
from typing import Any

import MySQLdb
from django.db import DatabaseError, transaction
from django.db.models import F, Func, JSONField, Value
from django.db.models.functions import Coalesce

from ..exceptions import DatabaseUnavailable
from ..ids import dashed
from ..models import TaskRecord
from ..states import State
from .base import Queue
from .clock import DatabaseNow
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

    def _claim(self, request: ClaimRequest) -> list[TaskRecord]:
        manager = TaskRecord.objects.using(self.database_alias)
        with transaction.atomic(using=self.database_alias):
            ids = list(
                manager.select_for_update(skip_locked=True)
                .filter(
                    state=State.READY,
                    queue_name__in=list(request.queue_names),
                    run_after__lte=DatabaseNow(),
                    attempts__lt=MAX_STORED_ATTEMPTS,
                )
                .order_by("-priority", "run_after", "id")
                .values_list("id", flat=True)[: request.limit]
            )
            if ids:
                manager.filter(id__in=ids).update(
                    state=State.RUNNING,
                    attempts=F("attempts") + 1,
                    lease_owner=request.worker_id,
                    lease_expires_at=DatabaseNow()
                    + Value(timedelta(seconds=request.lease_seconds)),
                    started_at=Coalesce("started_at", DatabaseNow()),
                    last_attempted_at=DatabaseNow(),
                    worker_ids=Func(
                        F("worker_ids"),
                        Value("$"),
                        Value(request.worker_id),
                        function="JSON_ARRAY_APPEND",
                        output_field=JSONField(),
                    ),
                )
        if not ids:
            return []
        return list(manager.filter(id__in=ids))


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
