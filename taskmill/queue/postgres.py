"""PostgreSQL queue.

Quirks handled:
- Claim is one statement: a CTE picks due rows with FOR UPDATE SKIP LOCKED (concurrent
  claimers skip each other's rows instead of waiting) and an UPDATE ... RETURNING takes them.
- The state literal is written into the claim's SQL text, not bound: with a bound parameter
  a generic (prepared) plan can't prove the partial claim index applies and scans instead.
- The claim runs with sorting disabled (SET LOCAL, in the same message), so it walks the
  claim index in order even when stale statistics would have the planner read and sort every
  ready row.
- A single enqueue() is one round trip: the INSERT and a SELECT pg_notify() for its queue,
  two statements in one simple-protocol message (one implicit transaction); with
  server-side binding, which takes one statement per message, a CTE holding both.
- enqueue_many() writes its rows with one COPY ... FROM STDIN (through psycopg, inside the
  caller's transaction or the call's own), JSON as text made once per distinct value. A
  multi-row INSERT had psycopg encode each row's Jsonb wrappers and quote thousands of
  parameters into the statement (Django binds on the client): about 200 µs per row.
- NOTIFY is sent inside the enqueuing transaction, so PostgreSQL delivers it on commit and
  never for a rolled-back enqueue; identical notifications in one transaction are folded.
- A notification's payload is the queue's name; for a task the database's clock says is due
  later, DUE_MARK, the due time and a space come first, so listening workers claim when it
  falls due (and not at once, for nothing).
- Notifications don't reach workers behind PgBouncer in transaction mode: polling remains,
  so LISTEN only makes pickup faster, never correct.
- Final outcomes are recorded in batches: one UPDATE ... FROM unnest(arrays) for a loop
  turn's outcomes (one statement text for any number of rows), with the whole lease fence in
  its WHERE clause; RETURNING says which rows it wrote, and the rest (lease lost, dependants
  waiting) take the one-row path.
- Whether a task is due and when a lease ends use CLOCK_TIMESTAMP(), the database's clock,
  not NOW() (the transaction's start) nor any worker host's clock.
- Session locks are session-level advisory locks (scoped to the database by PostgreSQL) on a
  connection of their own; idle_session_timeout makes the server end the session of a
  holder whose host vanished. They need a real session: not behind PgBouncer in
  transaction mode.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from datetime import datetime
from functools import cached_property, partial
from typing import Any, Final

import psycopg
from django.db import transaction
from django.db.backends.utils import CursorDebugWrapper
from django.db.models import Field
from psycopg.types.json import Jsonb

from ..exceptions import DatabaseUnavailable
from ..models import TaskRecord
from ..states import State
from .base import Queue
from .copy_text import escaped_json, line_tail
from .insert_rows import COPY_COLUMNS, Copies, prepared_rows
from .lease import MAX_STORED_ATTEMPTS, ClaimRequest
from .session_lock import SessionLock
from .waiter import Waiter

logger = logging.getLogger(__name__)

CHANNEL: Final = "taskmill"
# The claim reads its rows in the claim index's order, whatever the table's statistics say.
# Stale statistics (a burst enqueued since the last ANALYZE, a new table) make the planner
# expect a handful of ready rows and sort them all instead, after reading every one: 30 ms
# instead of 1 ms for a claim of 50 among 30,000 ready rows, and a drain's database CPU
# more than doubled (docs/explanation/performance.md, "Claims and stale statistics"). With
# sorting ruled out, the index's order is the only plan left. SET LOCAL: for this
# transaction only; the next statement puts it back inside a caller's transaction.
SORTLESS: Final = "SET LOCAL enable_sort = off"
SORT_AS_BEFORE: Final = "SET LOCAL enable_sort TO DEFAULT"
CANCEL_CHANNEL: Final = "taskmill_cancel"
# A notification's payload is the queue's name, after DUE_MARK, the due time in Unix seconds
# and a space for tasks due later (the earliest, on the database's clock): a listening worker
# then claims when they fall due instead of at its next poll. Leading, so that a queue's name
# may hold anything; workers of an older version read any payload as news now.
DUE_MARK: Final = "@"
# Notifications of work due later a waiter keeps between two takes, the earliest; tasks due
# after those are found by polling.
MAX_LATER: Final = 1000
# Rows from which one COPY is faster than multi-row INSERTs (measured in
# docs/explanation/performance.md); fewer go through the base class's INSERT.
COPY_MIN_ROWS: Final = 50
# Lines sent to COPY per write: each write is a message to the server, but one string of a
# whole call's lines would be a large copy in memory.
COPY_CHUNK_LINES: Final = 1000


class PostgresQueue(Queue):
    def end_stalled_transactions_after(self, seconds: float) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(f"SET idle_in_transaction_session_timeout = {round(seconds * 1000)}")

    def notify(
        self, queue_names: Iterable[str], later: Mapping[str, datetime] | None = None
    ) -> None:
        rows: list[tuple[str, datetime | None]] = [
            (name, None) for name in sorted(set(queue_names))
        ]
        rows += sorted((later or {}).items())
        if not rows:
            return
        names, dues = zip(*rows, strict=True)
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"SELECT pg_notify(%s, {_payload('v.name', 'v.due')}) "  # noqa: S608 - a constant expression
                "FROM unnest(%s::text[], %s::timestamptz[]) AS v(name, due)",
                [CHANNEL, list(names), list(dues)],
            )

    def _insert_one_sql(self, insert: str) -> str:
        # The NOTIFY rides in the INSERT's statement: one round trip, and (being one
        # statement) sent on commit of the row, or of the caller's transaction.
        _, c = self.quoted_names()
        payload = _payload(f"inserted.{c['queue_name']}", f"inserted.{c['run_after']}")
        return (
            f"WITH inserted AS ({insert} RETURNING {c['queue_name']}, {c['run_after']}) "  # noqa: S608 - quoted identifiers and constants
            f"SELECT pg_notify('{CHANNEL}', {payload}) FROM inserted"
        )

    def _insert_rows(self, records: Sequence[TaskRecord]) -> None:
        if len(records) < COPY_MIN_ROWS:
            super()._insert_rows(records)
            return
        copy_sql, fields = self._copy_columns
        rows = prepared_rows(records, fields, self._copy_value)

        def write(copy: psycopg.Copy) -> None:
            for row in rows:
                copy.write_row(row)

        self._copy(copy_sql, write)
        self._mark_saved(records)

    def _write_copies(self, copies: Copies) -> None:
        if copies.count < COPY_MIN_ROWS:
            super()._write_copies(copies)
            return
        copy_sql, shared_fields = self._copies_sql
        values = copies.template.__dict__
        tail = line_tail(
            [self._copy_value(field, values[field.attname]) for field in shared_fields]
        )
        # A line is the row's id (PostgreSQL's uuid input takes the bare hex digits), its
        # arguments and the fields every row shares, written out once.
        lines = [
            f"{task_id}\t{escaped_json(args)}\t{escaped_json(kwargs)}\t{tail}"
            for task_id, args, kwargs in zip(
                copies.ids, copies.args_texts, copies.kwargs_texts, strict=True
            )
        ]

        def write(copy: psycopg.Copy) -> None:
            for start in range(0, len(lines), COPY_CHUNK_LINES):
                copy.write("".join(lines[start : start + COPY_CHUNK_LINES]))

        self._copy(copy_sql, write)

    def _copy(self, sql: str, write: Callable[[psycopg.Copy], None]) -> None:
        """Run a COPY ... FROM STDIN, its data written by write(), as Django runs a query.

        Django's cursor has no copy(): the psycopg cursor under it does. Around it, what
        Django's execute() does: errors wrapped as django.db exceptions, the connection's
        execute_wrappers called (instrumentation, query counters), and with DEBUG the
        statement in connection.queries and the django.db.backends log, so assertNumQueries
        and the debug toolbar count it.
        """
        connection = self.connection
        with connection.cursor() as cursor:

            def run(sql: str, params: object, many: bool, context: dict[str, Any]) -> None:
                with connection.wrap_database_errors, cursor.cursor.copy(sql) as copy:
                    write(copy)

            executor: Callable[..., None] = run
            for wrapper in reversed(connection.execute_wrappers):
                executor = partial(wrapper, executor)
            logged = cursor.debug_sql(sql) if isinstance(cursor, CursorDebugWrapper) else None
            with logged or nullcontext():
                executor(sql, None, False, {"connection": connection, "cursor": cursor})

    @cached_property
    def _copies_sql(self) -> tuple[str, list[Field[Any, Any]]]:
        """The COPY loading the rows of Copies, its columns COPY_COLUMNS first, and the fields
        of the other columns, whose values every row shares, in order."""
        _, fields = self._insert_columns
        by_name = {field.attname: field for field in fields}
        first = [by_name[name] for name in COPY_COLUMNS]
        shared = [field for field in fields if field.attname not in COPY_COLUMNS]
        quote = self.connection.ops.quote_name
        columns = ", ".join(quote(str(field.column)) for field in [*first, *shared])
        table = quote(str(TaskRecord._meta.db_table))
        return f"COPY {table} ({columns}) FROM STDIN", shared

    @cached_property
    def _copy_columns(self) -> tuple[str, list[Field[Any, Any]]]:
        """The COPY loading task rows, and the fields its columns come from, in order."""
        _, fields = self._insert_columns
        quote = self.connection.ops.quote_name
        columns = ", ".join(quote(str(field.column)) for field in fields)
        return f"COPY {quote(str(TaskRecord._meta.db_table))} ({columns}) FROM STDIN", fields

    def _copy_value(self, field: Field[Any, Any], value: Any) -> Any:
        """A value as COPY's text format takes it: JSON as its text, in the column's encoder
        (Django's Jsonb wrapper would be encoded again for every row that shares it)."""
        prepared = self._prepare_value(field, value)
        if isinstance(prepared, Jsonb):
            return (prepared.dumps or json.dumps)(prepared.obj)
        return prepared

    @property
    def _server_side_binding(self) -> bool:
        return self.connection.settings_dict["OPTIONS"].get("server_side_binding") is True

    def _prepared_insert_sql(self, insert: str, *, deferred: bool) -> tuple[str, tuple[str, ...]]:
        if self._server_side_binding:
            # The extended protocol takes one statement per message: the CTE, then.
            return super()._prepared_insert_sql(insert, deferred=deferred)
        # Two statements in one simple-protocol message: one round trip, run as one implicit
        # transaction (or in the caller's), so the NOTIFY still goes only with a committed
        # row. The CTE form costs the server about three times the NOTIFY's own work (see
        # docs/explanation/performance.md).
        if deferred:
            payload = _payload("%s::text", "%s::timestamptz")
            fields = ("run_after", "run_after", "queue_name")
            return f"{insert}; SELECT pg_notify('{CHANNEL}', {payload})", fields
        return f"{insert}; SELECT pg_notify('{CHANNEL}', %s)", ("queue_name",)

    def notify_cancel(self) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [CANCEL_CHANNEL])

    @cached_property
    def _claim_sql(self) -> str:
        table, c = self.quoted_names()
        return f"""
            WITH picked AS (
                SELECT {c["id"]} FROM {table}
                WHERE {c["state"]} = '{State.READY.value}'
                  AND {c["queue_name"]} = ANY(%(queues)s)
                  AND {c["run_after"]} <= CLOCK_TIMESTAMP()
                  AND {c["attempts"]} < {MAX_STORED_ATTEMPTS}
                ORDER BY {c["priority"]} DESC, {c["run_after"]}, {c["id"]}
                LIMIT %(limit)s
                FOR UPDATE SKIP LOCKED
            )
            UPDATE {table} AS t SET
                {c["state"]} = %(running)s,
                {c["attempts"]} = t.{c["attempts"]} + 1,
                {c["lease_owner"]} = %(worker_id)s::text,
                {c["lease_expires_at"]} = CLOCK_TIMESTAMP() + make_interval(secs => %(lease)s),
                {c["started_at"]} = COALESCE(t.{c["started_at"]}, CLOCK_TIMESTAMP()),
                {c["last_attempted_at"]} = CLOCK_TIMESTAMP(),
                {c["worker_ids"]} = t.{c["worker_ids"]} || to_jsonb(%(worker_id)s::text)
            FROM picked WHERE t.{c["id"]} = picked.{c["id"]}
            RETURNING t.*
        """  # noqa: S608 - only quoted identifiers and a State constant are formatted in

    def _claim(self, request: ClaimRequest) -> list[TaskRecord]:
        params: dict[str, Any] = {
            "queues": list(request.queue_names),
            "limit": request.limit,
            "running": State.RUNNING.value,
            "worker_id": request.worker_id,
            "lease": request.lease_seconds,
        }
        if self._server_side_binding:
            # One statement per message: the setting needs a transaction of its own.
            with transaction.atomic(using=self.database_alias):
                with self.connection.cursor() as cursor:
                    cursor.execute(SORTLESS)
                records = self._read_claimed(self._claim_sql, params)
                with self.connection.cursor() as cursor:
                    cursor.execute(SORT_AS_BEFORE)
            return records
        # The setting, the claim and the read of what it claimed are one round trip: three
        # statements in one simple-protocol message, run as one implicit transaction (or in
        # the caller's, where the last one puts the setting back).
        with self.connection.cursor() as cursor:
            cursor.execute(f"{SORTLESS}; {self._claim_sql}; {SORT_AS_BEFORE}", params)
            cursor.nextset()
            return self.rows.records(cursor, self.database_alias)

    def _finish_sql(self, rows: int) -> str | None:
        return self._finish_all_sql

    @cached_property
    def _finish_all_sql(self) -> str:
        table, c = self.quoted_names()
        # One array per column, unnested into rows: the statement's text is the same for any
        # number of rows, so psycopg converts it once (it caches statements up to 50
        # parameters, and a VALUES list has 8 per row) and the server parses a short text.
        return f"""
            UPDATE {table} AS t SET
                {c["state"]} = v.state,
                {c["errors"]} = v.errors::jsonb,
                {c["return_value"]} = v.return_value::jsonb,
                {c["finished_at"]} = v.finished_at,
                {c["expires_at"]} = v.expires_at,
                {c["lease_owner"]} = NULL,
                {c["lease_expires_at"]} = NULL,
                {c["cancel_requested_at"]} = NULL,
                {c["unique_key"]} = NULL
            FROM unnest(
                %s::uuid[], %s::text[], %s::integer[], %s::text[], %s::text[], %s::text[],
                %s::timestamptz[], %s::timestamptz[]
            ) AS v(id, owner, attempt, state, errors, return_value, finished_at, expires_at)
            WHERE t.{c["id"]} = v.id
              AND t.{c["state"]} = '{State.RUNNING.value}'
              AND t.{c["lease_owner"]} = v.owner
              AND t.{c["attempts"]} = v.attempt
              AND NOT t.{c["has_dependants"]}
            RETURNING t.{c["id"]}
        """  # noqa: S608 - only quoted identifiers, placeholders and a State constant

    def _finish_params(self, rows: list[list[Any]]) -> list[Any]:
        # One array per column (see _finish_all_sql), each bound as the text of an array
        # literal: psycopg's list adapter dumps element by element in Python, which cost more
        # than the rest of recording a batch; the casts in the statement read the text alike.
        return [_array_literal(column) for column in zip(*rows, strict=True)]

    def open_waiter(self) -> Waiter:
        try:
            return ListenWaiter(self)
        except psycopg.Error as error:
            raise DatabaseUnavailable(f"can't open the LISTEN connection: {error}") from error

    def open_session_lock(self, name: str, *, idle_timeout: float) -> SessionLock:
        return AdvisoryLock(self, name, idle_timeout)


class ListenWaiter(Waiter):
    """Wakes on NOTIFY, over a connection of its own kept in autocommit."""

    pushes = True

    def __init__(self, queue: PostgresQueue) -> None:
        wrapper = queue.connection
        self.connection = wrapper.get_new_connection(wrapper.get_connection_params())
        self.connection.autocommit = True
        self.connection.execute(f"LISTEN {CHANNEL}")
        self.connection.execute(f"LISTEN {CANCEL_CHANNEL}")
        self.later: list[tuple[str, float]] = []  # read by check(), for take_later()

    def fileno(self) -> int | None:
        fileno: int = self.connection.fileno()
        return fileno

    def check(self) -> bool:
        news = False
        try:
            for notify in self.connection.notifies(timeout=0):
                due = _due_time(notify.payload)
                if due is None:
                    news = True  # a task due now, a cancel request, or a payload not ours
                    continue
                self.later.append(due)
                if len(self.later) >= 2 * MAX_LATER:
                    self.later = _earliest(self.later)
        except psycopg.Error as error:
            raise DatabaseUnavailable(f"the LISTEN connection failed: {error}") from error
        return news

    def take_later(self) -> list[tuple[str, float]]:
        later, self.later = _earliest(self.later), []
        return later

    def close(self) -> None:
        self.connection.close()


class AdvisoryLock(SessionLock):
    """pg_try_advisory_lock on a connection of its own; closing the connection releases it."""

    def __init__(self, queue: PostgresQueue, name: str, idle_timeout: float) -> None:
        self.queue = queue
        digest = hashlib.blake2b(f"taskmill:{name}".encode(), digest_size=8).digest()
        self.key = int.from_bytes(digest, "big", signed=True)
        self.idle_timeout_ms = max(1000, int(idle_timeout * 1000))
        self.connection: psycopg.Connection[Any] | None = None

    def try_acquire(self) -> bool:
        if self.connection is not None:
            return True
        wrapper = self.queue.connection
        try:
            connection = wrapper.get_new_connection(wrapper.get_connection_params())
            connection.autocommit = True
            connection.execute(
                "SELECT set_config('idle_session_timeout', %s, false)", [str(self.idle_timeout_ms)]
            )
            row = connection.execute("SELECT pg_try_advisory_lock(%s)", [self.key]).fetchone()
        except psycopg.Error as error:
            raise DatabaseUnavailable(f"can't take the session lock: {error}") from error
        if row is None or not row[0]:
            # Standing by costs no connection: the next try opens a new one.
            connection.close()
            return False
        self.connection = connection
        return True

    def is_held(self) -> bool:
        if self.connection is None:
            return False
        try:
            self.connection.execute("SELECT 1")
        except psycopg.Error:
            # The session ended (server restart, idle timeout, killed): the lock went with it.
            self.release()
            return False
        return True

    def release(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def _due_time(payload: str) -> tuple[str, float] | None:
    """The queue and due time of a notification of work due later, else None."""
    if not payload.startswith(DUE_MARK):
        return None
    due, space, name = payload[len(DUE_MARK) :].partition(" ")
    if not space:
        return None
    try:
        seconds = float(due)
    except ValueError:
        return None  # a queue whose name starts so, due now
    return (name, seconds) if math.isfinite(seconds) else None


def _earliest(later: list[tuple[str, float]]) -> list[tuple[str, float]]:
    return sorted(later, key=lambda item: item[1])[:MAX_LATER]


def _payload(name: str, due: str) -> str:
    """SQL for a notification's payload: the queue `name`, after DUE_MARK, the due time and a
    space if `due` is later than now on the database's clock (a NULL `due` is due now).
    `due` appears twice: a placeholder there is bound twice, before `name`'s."""
    return (
        f"CASE WHEN {due} > CLOCK_TIMESTAMP() "
        f"THEN '{DUE_MARK}' || EXTRACT(EPOCH FROM {due}) || ' ' ELSE '' END || {name}"
    )


def _array_literal(values: Iterable[Any]) -> str:
    """The text of a PostgreSQL array holding values, each quoted, None as NULL."""
    return "{" + ",".join(_array_element(value) for value in values) + "}"


def _array_element(value: Any) -> str:
    if value is None:
        return "NULL"
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    # Inside double quotes only a backslash and a double quote are special.
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
