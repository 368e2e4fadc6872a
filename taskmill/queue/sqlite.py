"""SQLite queue.

Quirks handled:
- One writer at a time: a claim is a single UPDATE ... WHERE id IN (SELECT ... LIMIT n)
  RETURNING statement, which SQLite runs under its write lock, so two worker processes can
  never both take a row. (A SELECT-then-UPDATE in a deferred transaction could.)
- The state literal is in the SQL text: SQLite uses a partial index only when the query's
  WHERE clause contains the index's condition literally.
- SQLite is a local file, so the worker's clock *is* the database's clock; times are bound
  as parameters in the text format Django stores.
- WAL mode lets readers (get_result, the admin) work while a writer holds the lock; the
  worker switches the file to WAL. A waiting worker watches the WAL file for commits
  instead of querying, so idle polling costs a stat() call.
- Needs SQLite 3.35+ (RETURNING) and its JSON functions.
"""

import json
import os
from datetime import timedelta
from functools import cached_property
from typing import Final

from django.utils import timezone

from ..models import TaskRecord
from ..states import State
from .base import Queue
from .lease import ClaimRequest
from .waiter import Waiter

WAL_CHECK_INTERVAL: Final = 0.025


class SQLiteQueue(Queue):
    def prepare_worker_connection(self) -> None:
        # journal_mode can't change inside a transaction (run_until_empty in a test's atomic).
        if self.connection.in_atomic_block:
            return
        with self.connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode=WAL")

    @cached_property
    def _claim_sql(self) -> str:
        table, c = self.quoted_names()
        return f"""
            UPDATE {table} SET
                {c["state"]} = %s,
                {c["attempts"]} = {c["attempts"]} + 1,
                {c["lease_owner"]} = %s,
                {c["lease_expires_at"]} = %s,
                {c["started_at"]} = COALESCE({c["started_at"]}, %s),
                {c["last_attempted_at"]} = %s,
                {c["worker_ids"]} = json_insert({c["worker_ids"]}, '$[#]', %s)
            WHERE {c["id"]} IN (
                SELECT {c["id"]} FROM {table}
                WHERE {c["state"]} = '{State.READY.value}'
                  AND {c["queue_name"]} IN (SELECT value FROM json_each(%s))
                  AND {c["run_after"]} <= %s
                ORDER BY {c["priority"]} DESC, {c["run_after"]}, {c["id"]}
                LIMIT %s
            )
            RETURNING *
        """  # noqa: S608 - only quoted identifiers and a State constant are formatted in

    def _claim(self, request: ClaimRequest) -> list[TaskRecord]:
        adapt = self.connection.ops.adapt_datetimefield_value
        # The lease and the due test need the database's clock; for a local file that is the
        # clock of this host, read fresh here.
        db_now = timezone.now()
        stamp = adapt(request.now)
        db_stamp = adapt(db_now)
        params = [
            State.RUNNING.value,
            request.worker_id,
            adapt(db_now + timedelta(seconds=request.lease_seconds)),
            stamp,
            stamp,
            request.worker_id,
            json.dumps(list(request.queue_names)),
            db_stamp,
            request.limit,
        ]
        # raw() applies each field's converters to the rows RETURNING gives back.
        return list(TaskRecord.objects.using(self.database_alias).raw(self._claim_sql, params))

    def open_waiter(self) -> Waiter:
        return WalWaiter(str(self.connection.settings_dict["NAME"]) + "-wal")


class WalWaiter(Waiter):
    """Notices commits by other processes through the WAL file's size and time."""

    check_interval = WAL_CHECK_INTERVAL

    def __init__(self, wal_path: str) -> None:
        self.wal_path = wal_path
        self.last_seen = self._signature()

    def _signature(self) -> tuple[int, int] | None:
        try:
            status = os.stat(self.wal_path)
        except FileNotFoundError:
            return None
        return status.st_mtime_ns, status.st_size

    def forget_news(self) -> None:
        # The worker's own claim and heartbeat writes change the WAL file too; without this,
        # each would wake it for one more claim, which is most of what an idle worker costs.
        self.last_seen = self._signature()

    def check(self) -> bool:
        seen = self._signature()
        changed = seen != self.last_seen
        self.last_seen = seen
        return changed
