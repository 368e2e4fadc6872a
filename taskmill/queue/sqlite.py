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
  worker switches the file to WAL. A waiting worker sleeps on an inotify watch of the WAL
  file (Linux; elsewhere it checks every 25 ms) and, woken, reads PRAGMA data_version on its
  own connection, which changes only for other connections' commits.
- Final outcomes are recorded in batches: one UPDATE ... FROM (VALUES ...) ... RETURNING
  (3.33+ for UPDATE FROM) with the whole lease fence in its WHERE clause; the rows it didn't
  write take the one-row path.
- Needs SQLite 3.35+ (RETURNING) and its JSON functions.
- Session locks are flock()s on a file beside the database file: every process using a
  SQLite file is on its host, and the kernel frees the lock when its holder dies, at once.
  A database in memory has no file, and no worker process can share it anyway.
"""

import fcntl
import json
import os
import sqlite3
import time
from datetime import timedelta
from functools import cached_property
from typing import Final

from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from ..exceptions import ConfigurationError, DatabaseUnavailable, QueueBusy
from ..models import TaskRecord
from ..states import State
from .base import Queue
from .errors import translate
from .file_watch import FileWatch
from .lease import MAX_STORED_ATTEMPTS, ClaimRequest
from .session_lock import SessionLock
from .waiter import Waiter

COMMIT_CHECK_INTERVAL: Final = 0.025
# With a watch on the WAL file, checking is only the safety net for writes inotify doesn't
# see (a network file system); the watch wakes the worker for the others.
WATCHED_CHECK_INTERVAL: Final = 0.5
# A commit writes the WAL file before it publishes itself in the WAL index, and the watch
# wakes the worker at the first write: a read of data_version in between sees nothing yet.
# So after a write that showed no commit, the worker looks again this often for a while.
SETTLE_CHECK_INTERVAL: Final = 0.002
SETTLE_FOR: Final = 0.1


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
                  AND {c["attempts"]} < {MAX_STORED_ATTEMPTS}
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
        db_stamp = adapt(db_now)
        params = [
            State.RUNNING.value,
            request.worker_id,
            adapt(db_now + timedelta(seconds=request.lease_seconds)),
            db_stamp,
            db_stamp,
            request.worker_id,
            json.dumps(list(request.queue_names)),
            db_stamp,
            request.limit,
        ]
        # The claim and the read of what it claimed are one round trip.
        return self._read_claimed(self._claim_sql, params)

    def _finish_sql(self, rows: int) -> str | None:
        sql = self._finish_sql_by_rows.get(rows)
        if sql is None:
            sql = self._finish_sql_by_rows[rows] = self._build_finish_sql(rows)
        return sql

    @cached_property
    def _finish_sql_by_rows(self) -> dict[int, str]:
        # Built once per batch size: a draining worker writes a batch every few milliseconds.
        return {}

    def _build_finish_sql(self, rows: int) -> str:
        table, c = self.quoted_names()
        values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * rows)
        # SQLite names a VALUES list's columns column1, column2, ...: in the order bound below.
        return f"""
            UPDATE {table} SET
                {c["state"]} = v.column4,
                {c["errors"]} = v.column5,
                {c["return_value"]} = v.column6,
                {c["finished_at"]} = v.column7,
                {c["expires_at"]} = v.column8,
                {c["lease_owner"]} = NULL,
                {c["lease_expires_at"]} = NULL,
                {c["cancel_requested_at"]} = NULL,
                {c["unique_key"]} = NULL
            FROM (VALUES {values}) AS v
            WHERE {table}.{c["id"]} = v.column1
              AND {table}.{c["state"]} = '{State.RUNNING.value}'
              AND {table}.{c["lease_owner"]} = v.column2
              AND {table}.{c["attempts"]} = v.column3
              AND NOT {table}.{c["has_dependants"]}
            RETURNING {table}.{c["id"]}
        """  # noqa: S608 - only quoted identifiers, placeholders and a State constant

    def open_waiter(self) -> Waiter:
        self.connection.ensure_connection()
        return DataVersionWaiter(
            self.connection, wal_path=f"{self.connection.settings_dict['NAME']}-wal"
        )

    def open_session_lock(self, name: str, *, idle_timeout: float) -> SessionLock:
        database = str(self.connection.settings_dict["NAME"])
        if database == ":memory:" or "mode=memory" in database:
            raise ConfigurationError(
                f"Database {self.database_alias!r} is an in-memory SQLite database; other "
                "processes can't share it. Use a database file."
            )
        return FileLock(f"{database}-taskmill-{name}.lock")


class DataVersionWaiter(Waiter):
    """Notices commits by other connections through PRAGMA data_version, read on the worker's
    own connection.

    SQLite changes that number only for commits made by other connections, so the worker's
    own claims and heartbeats never count as news, and a commit landing between its last
    claim and its sleep still does. (Watching the WAL file's size and
    time, as this did before, missed a commit within one clock tick of the worker's own.)

    On Linux the worker sleeps on an inotify watch of the WAL file, which every commit
    writes: it wakes at once, and only when something was written; elsewhere, or without
    the file, it reads the number every COMMIT_CHECK_INTERVAL.
    """

    pushes = True

    def __init__(self, wrapper: BaseDatabaseWrapper, wal_path: str | None = None) -> None:
        self.wrapper = wrapper
        self.watch = FileWatch.open(wal_path) if wal_path is not None else None
        self.settling_until = 0.0  # see SETTLE_CHECK_INTERVAL
        self.last_seen = self._version()

    @property
    def check_interval(self) -> float:  # type: ignore[override]  # read per wait
        if self.watch is None or not self.watch.watching:
            return COMMIT_CHECK_INTERVAL
        if time.monotonic() < self.settling_until:
            return SETTLE_CHECK_INTERVAL
        return WATCHED_CHECK_INTERVAL

    def fileno(self) -> int | None:
        return self.watch.fileno() if self.watch is not None else None

    def forget_news(self) -> None:
        # What the watch saw before the sleep is mostly the worker's own writes; the sleep's
        # first check reads data_version, which tells another connection's commit apart.
        if self.watch is not None:
            self.watch.drain()

    def close(self) -> None:
        if self.watch is not None:
            self.watch.close()

    def _version(self) -> tuple[object, int] | None:
        # The numbers of two connections aren't comparable: the connection is part of what
        # was seen, so a reconnect counts as news once. A closed connection is the
        # supervisor's to reopen, with its backoff; until then nothing is seen.
        raw = self.wrapper.connection
        if raw is None:
            return None
        try:
            (version,) = raw.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error as error:
            if isinstance(translate(error), QueueBusy):
                return None  # locked for a moment (a checkpoint): the next check reads it
            raise DatabaseUnavailable(f"reading PRAGMA data_version failed: {error}") from error
        return raw, version

    def check(self) -> bool:
        written = False
        if self.watch is not None:
            written = self.watch.drain()
            self.watch.rearm()
        seen = self._version()
        if seen is None:
            return False
        changed = seen != self.last_seen  # sqlite3 connections compare by identity
        self.last_seen = seen
        if changed:
            self.settling_until = 0.0
        elif written:
            self.settling_until = time.monotonic() + SETTLE_FOR
        return changed


class FileLock(SessionLock):
    """An exclusive flock on a file; closing the file (or dying) releases it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None

    def try_acquire(self) -> bool:
        if self.fd is not None:
            return True
        # Never unlinked: deleting a lock file races with a process opening it.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def is_held(self) -> bool:
        return self.fd is not None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
